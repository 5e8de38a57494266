"""Pose templates and Affine-Align's choice of transform (docs/method.md §2.2-2.3)."""
import json
from dataclasses import dataclass

import numpy as np
import torch

from ..utils import device_constant, to_device
from .keypoints import COCO_PERSON_FLIP_MAP, COCO_PERSON_KEYPOINT_NAMES, NUM_KEYPOINTS, flip_permutation
from .transforms import keypoint_box_matrices, labeled_mask, per_person_sizes, resize_padding_matrices

__all__ = ["PoseFit", "PoseTemplates", "FALLBACKS", "MIRRORS", "MIN_SPREAD"]

# The window of a person no template fits: "whole_map" squeezes the whole source into it (aspect
# kept, centered; the release's fallback); "keypoint_box" fits the enlarged box of the labeled
# keypoints (see keypoint_box_matrices).
FALLBACKS = ("whole_map", "keypoint_box")

# How the mirrored copy of a template is made: "swap_rows" swaps the left and right keypoint
# rows and keeps x (a person seen from behind, as the release does); "geometric" also reflects x
# (x -> 1 - x, the pose's mirror image).
MIRRORS = ("swap_rows", "geometric")

# The names the first values had, accepted so that configs naming them keep working.
_ALIASES = {"mirror": {"release": "swap_rows"}, "fallback": {"release": "whole_map"}}


def _canonical(kind, value, choices):
    """``value`` of option ``kind`` ("mirror" or "fallback") with its alias resolved; a
    ValueError naming the choices for any other value."""
    value = _ALIASES[kind].get(value, value)
    if value not in choices:
        raise ValueError(f"{kind} must be one of {choices} (or 'release', an alias of {choices[0]!r}), got {value!r}")
    return value

# A person whose shared keypoints lie within this many source pixels (root mean square
# distance from their mean) of one point has no usable pose: no template is fitted to it. This
# also bounds the scale of a fit, so its matrix stays finite in float32.
MIN_SPREAD = 1e-3


@dataclass
class PoseFit:
    """
    The transform chosen for each person.

    Attributes:
        matrices (Tensor): (N, 3, 3) float32, source pixel coordinates -> window pixel
            coordinates.
        scores (Tensor): (N,) float32 in [0, 1]; 0 where the fallback was used.
        template_index (Tensor): (N,) long, the index into :attr:`PoseTemplates.templates`
            (mirrored copies included), or -1 where the fallback was used.
    """

    matrices: torch.Tensor
    scores: torch.Tensor
    template_index: torch.Tensor


def _as_keypoint_tensor(keypoints):
    if isinstance(keypoints, np.ndarray):
        keypoints = torch.from_numpy(keypoints)
    keypoints = torch.as_tensor(keypoints)
    if keypoints.dim() != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {tuple(keypoints.shape)}")
    return keypoints


class PoseTemplates:
    """
    Canonical poses in the unit square, each given with its left-right mirror.

    ``templates`` is (2K, 17, 3): the K loaded templates, then their mirrored copies (see
    :data:`MIRRORS`); x, y in
    [0, 1] (x grows right, y grows down, like image pixels); v the fraction of the cluster's
    members in which the keypoint is labeled, set to 0 (with x, y) below ``vis_threshold``.
    A keypoint with v > 0 is *present* in the template.
    """

    def __init__(
        self,
        templates,
        names=COCO_PERSON_KEYPOINT_NAMES,
        flip_map=None,
        vis_threshold=0.4,
        mirror="swap_rows",
    ):
        """
        Args:
            templates (array-like): (K, 17, 3) or K flat lists of 51 values, *without* the
                mirrored copies (they are added here).
            names (sequence[str]): keypoint names of the template rows, the COCO order.
            flip_map (dict[str, str]): left name -> right name.
            vis_threshold (float): keypoints with v below it are absent.
            mirror (str): one of :data:`MIRRORS`: the mirrored copies swap the left and right
                rows and keep x ("swap_rows"; "release" is an alias) or also take x to 1 - x
                ("geometric").
        """
        names = tuple(names)
        mirror = _canonical("mirror", mirror, MIRRORS)
        if names != COCO_PERSON_KEYPOINT_NAMES:
            raise ValueError(
                f"template keypoint names must be the 17 COCO names in COCO order, got {list(names)}"
            )
        flip_map = dict(COCO_PERSON_FLIP_MAP if flip_map is None else flip_map)
        base = torch.as_tensor(np.asarray(templates, dtype=np.float64)).reshape(-1, NUM_KEYPOINTS, 3)
        if base.shape[0] == 0:
            raise ValueError("at least one template is needed")
        if not torch.isfinite(base).all():
            raise ValueError("templates hold NaN or infinite values")
        self.names = names
        self.flip_map = flip_map
        self.vis_threshold = float(vis_threshold)
        self.mirror = mirror
        self.raw_templates = base.clone()  # as given, for save()

        base = base.clone()
        absent = base[..., 2] < self.vis_threshold
        base[absent] = 0.0
        mirrored = base[:, flip_permutation(names, flip_map)].clone()
        if mirror == "geometric":
            mirrored[..., 0] = torch.where(mirrored[..., 2] > 0, 1.0 - mirrored[..., 0], mirrored[..., 0])
        self.templates = torch.cat([base, mirrored])  # (2K, 17, 3) float64

    def __len__(self):
        return self.templates.shape[0]

    @property
    def num_clusters(self):
        return self.raw_templates.shape[0]

    # ---------------------------------------------------------------- file format
    @classmethod
    def load(cls, path, mirror="swap_rows"):
        """
        Read a templates JSON: keys ``names``, ``flip_map``, ``vis_threshold``, ``templates``
        (K flat lists of 17 x 3 values); other keys (the release also writes
        ``connections`` and ``minpoints``) are ignored. ``mirror``: see :data:`MIRRORS`.
        """
        with open(path) as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from e
        for key in ("names", "flip_map", "vis_threshold", "templates"):
            if key not in data:
                raise ValueError(f"{path}: templates file lacks the field {key!r}")
        for i, t in enumerate(data["templates"]):
            if len(t) != NUM_KEYPOINTS * 3:
                raise ValueError(
                    f"{path}: templates[{i}] has {len(t)} values, expected {NUM_KEYPOINTS * 3}"
                )
        try:
            return cls(data["templates"], data["names"], data["flip_map"], data["vis_threshold"], mirror)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from e

    def save(self, path):
        """Write the templates as given (without the mirrored copies) in the JSON format."""
        data = {
            "names": list(self.names),
            "flip_map": self.flip_map,
            "vis_threshold": self.vis_threshold,
            "templates": [t.reshape(-1).tolist() for t in self.raw_templates],
        }
        with open(path, "w") as f:
            json.dump(data, f, indent=1)

    def _templates_on(self, device):
        """:attr:`templates` on ``device``, copied there once (not once per call)."""
        if torch.compiler.is_compiling():
            # a constant of the traced graph; the cache must not keep torch.export's fake tensor
            return self.templates.to(device)
        cache = self.__dict__.setdefault("_device_copies", {})
        source, copy = cache.get(device, (None, None))
        if source is not self.templates:
            # a tensor of its own on the CPU too, as on a GPU
            copy = to_device(self.templates.clone(), device)
            cache[device] = (self.templates, copy)
        return copy

    # ---------------------------------------------------------------- alignment
    def similarity_fits(self, keypoints, hard=True):
        """
        Least-squares similarity of every person onto every template, in template units.

        Args:
            keypoints (Tensor): (N, 17, 3) source pixel coordinates; v > 0 means labeled.
            hard (bool): reject a template that lacks a keypoint the person has.

        Returns:
            tuple: ``matrices`` (N, T, 3, 3) float64 mapping source pixels into the unit square
            of each template, and ``scores`` (N, T) float64: mean over the shared points I of
            exp(-d^2 / 2) times |I| / |U|; 0 where no fit exists (|I| < 3, the hard rule, or
            the shared person points identical: their root mean square distance from their
            mean at most :data:`MIN_SPREAD` pixels). Keypoints that are NaN, infinite or
            beyond :data:`MAX_COORDINATE` count as unlabeled (see :func:`labeled_mask`).
        """
        keypoints = _as_keypoint_tensor(keypoints)
        device = keypoints.device
        templates = self._templates_on(device)
        person_labeled = labeled_mask(keypoints)  # (N, 17)
        template_present = templates[..., 2] > 0  # (T, 17)
        shared = person_labeled[:, None] & template_present[None]  # (N, T, 17)
        union = person_labeled[:, None] | template_present[None]
        num_shared = shared.sum(-1).to(torch.float64)
        num_union = union.sum(-1).to(torch.float64)

        weight = shared.to(torch.float64)[..., None]  # (N, T, 17, 1)
        # unlabeled keypoints (NaN, infinite, absurd) take no part: zero them so that no
        # intermediate value can overflow
        src = torch.where(person_labeled[..., None], keypoints[..., :2].to(torch.float64), 0.0)
        src = src[:, None].expand(-1, templates.shape[0], -1, -1)  # (N, T, 17, 2)
        dst = templates[None, ..., :2].expand(keypoints.shape[0], -1, -1, -1)
        count = num_shared.clamp(min=1)[..., None, None]
        src_mean = (src * weight).sum(-2, keepdim=True) / count
        dst_mean = (dst * weight).sum(-2, keepdim=True) / count
        p = (src - src_mean) * weight
        q = (dst - dst_mean) * weight
        # q ~ [[a, -b], [b, a]] p + t, solved in closed form.
        denom = (p * p).sum((-2, -1))
        a = (p * q).sum((-2, -1))
        b = (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]).sum(-1)
        # identical (or all but identical) shared person points fix no rotation or scale
        degenerate = ~(denom > num_shared * MIN_SPREAD**2) | ~torch.isfinite(denom)
        safe = torch.where(degenerate, torch.ones_like(denom), denom)
        a, b = a / safe, b / safe
        sm, dm = src_mean[..., 0, :], dst_mean[..., 0, :]
        tx = dm[..., 0] - (a * sm[..., 0] - b * sm[..., 1])
        ty = dm[..., 1] - (b * sm[..., 0] + a * sm[..., 1])

        fx = a[..., None] * src[..., 0] - b[..., None] * src[..., 1] + tx[..., None]
        fy = b[..., None] * src[..., 0] + a[..., None] * src[..., 1] + ty[..., None]
        d2 = (fx - dst[..., 0]) ** 2 + (fy - dst[..., 1]) ** 2
        closeness = torch.where(shared, torch.exp(-d2 / 2), torch.zeros_like(d2)).sum(-1)
        scores = closeness / num_union.clamp(min=1)  # mean over I times |I| / |U|

        valid = (num_shared >= 3) & ~degenerate & torch.isfinite(scores)
        if hard:
            valid &= ~(person_labeled[:, None] & ~template_present[None]).any(-1)
        scores = torch.where(valid, scores, torch.zeros_like(scores))

        matrices = torch.zeros(*a.shape, 3, 3, dtype=torch.float64, device=device)
        matrices[..., 0, 0], matrices[..., 0, 1], matrices[..., 0, 2] = a, -b, tx
        matrices[..., 1, 0], matrices[..., 1, 1], matrices[..., 1, 2] = b, a, ty
        matrices[..., 2, 2] = 1.0
        return matrices, scores

    def fit(self, keypoints, src_size, dst_size, hard=True, fallback="whole_map", fallback_enlarge=1.25):
        """
        Choose each person's transform into the window (docs/method.md §2.3).

        Every template is fitted (see :meth:`similarity_fits`); its unit-square transform is
        scaled to the window (x by the window width, y by its height, as the release does).
        A template is accepted if its score is > 0 and its scale (the norm of the first row
        of the 2x2 part) exceeds the scale of the whole-map fallback; the accepted template with
        the highest score wins (the first on ties).

        Persons no template is accepted for get the fallback, score 0 and index -1:
        ``"whole_map"`` squeezes the whole source into the window (aspect kept, centered);
        ``"keypoint_box"`` fits the labeled keypoints' box, enlarged by ``fallback_enlarge``
        (see :func:`keypoint_box_matrices`). This never fails on messy keypoints; they land in
        the fallback:

        - keypoints that are NaN, infinite or beyond :data:`MAX_COORDINATE` count as
          unlabeled (:func:`labeled_mask`);
        - fewer than 3 labeled keypoints shared with a template, or shared keypoints all at
          one point (within :data:`MIN_SPREAD`): that template does not fit;
        - no labeled keypoint at all: the whole-map matrix, whichever ``fallback``;
        - collinear keypoints are fitted like any others (two distinct points define a
          similarity); a tiny person is accepted only while its scale exceeds the whole map's.

        Every returned matrix is finite and invertible (for sources of at least one pixel).

        Args:
            keypoints (Tensor or ndarray): (N, 17, 3) in source pixel coordinates.
            src_size: source (height, width), e.g. the feature map's; or an (N, 2) tensor
                with one per person (persons of a batch of images of different sizes).
            dst_size (tuple[int, int]): window (height, width).
            hard (bool): apply the hard rule (a template must cover every labeled keypoint).
            fallback (str): one of :data:`FALLBACKS` ("release" is an alias of "whole_map").
            fallback_enlarge (float): ``"keypoint_box"``: the box's growth about its center.

        Returns:
            PoseFit
        """
        fallback = _canonical("fallback", fallback, FALLBACKS)
        keypoints = _as_keypoint_tensor(keypoints)
        device = keypoints.device
        num = keypoints.shape[0]
        dst_h, dst_w = dst_size
        src_sizes = per_person_sizes(src_size, num, device)
        whole_map = resize_padding_matrices(src_sizes, dst_size)  # (N, 3, 3)
        whole_map_scale = whole_map[:, 0, 0]

        if num == 0:
            return PoseFit(
                matrices=torch.zeros(0, 3, 3, device=device),
                scores=torch.zeros(0, device=device),
                template_index=torch.zeros(0, dtype=torch.long, device=device),
            )
        fits, scores = self.similarity_fits(keypoints, hard=hard)
        to_window = device_constant(((dst_w, 0.0, 0.0), (0.0, dst_h, 0.0), (0.0, 0.0, 1.0)), torch.float64, device)
        window_fits = to_window @ fits  # (N, T, 3, 3)
        scale = torch.hypot(window_fits[..., 0, 0], window_fits[..., 0, 1])
        accepted = (scores > 0) & (scale > whole_map_scale[:, None])
        ranked = torch.where(accepted, scores, torch.full_like(scores, -1.0))
        best_score, best = ranked.max(dim=1)
        found = best_score > 0

        if fallback == "whole_map":
            fallback_matrices = whole_map
        else:
            fallback_matrices = keypoint_box_matrices(keypoints, src_sizes, dst_size, enlarge=fallback_enlarge)
        chosen = window_fits[torch.arange(num, device=device), best]
        matrices = torch.where(found[:, None, None], chosen, fallback_matrices)
        return PoseFit(
            matrices=matrices.to(torch.float32),
            scores=torch.where(found, best_score, torch.zeros_like(best_score)).to(torch.float32),
            template_index=torch.where(found, best, torch.full_like(best, -1)),
        )
