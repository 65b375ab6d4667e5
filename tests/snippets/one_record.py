"""Score one record with any package: the Pattern 1 steps with its own features.

Run it in the package's folder; the record is the package's first self-test
input, so the expected score is known.
"""

from inference_example import ModelInference

inference = ModelInference()
features = inference.manifest["self_test"]["inputs"][:1]
result = inference.predict(features)
expected = inference.manifest["self_test"]["scores"][0]
assert abs(result["scores"][0] - expected) <= 1e-9, (result, expected)
print(f"Anomalies: {result['anomaly_count']}/{result['total_samples']}")
