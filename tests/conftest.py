"""Fixtures shared by the test modules."""
import logging

import pytest


@pytest.fixture
def logs(caplog):
    """caplog for the "pose2seg_d2" logger, also once Detectron2's setup_logger stopped its propagation."""
    logger = logging.getLogger("pose2seg_d2")
    logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.INFO)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.setLevel(previous)
