# "Error Recovery" of the package specification, as written there (import
# order and blank lines as ruff formats them), plus one line: the
# specification's code calls time.sleep without importing time.
import logging
import time  # added: missing from the specification's snippet

from inference_example import ModelInference

logging.basicConfig(level=logging.INFO)
logger = logging.getLogger(__name__)


def safe_predict(features, max_retries=3):
    for attempt in range(max_retries):
        try:
            inference = ModelInference()
            return inference.predict(features)
        except Exception as e:
            logger.error(f"Prediction attempt {attempt + 1} failed: {e}")
            if attempt == max_retries - 1:
                raise
            time.sleep(1)  # Brief delay before retry
