# Pattern 3 of the package specification (Batch Processing), as written
# there (only quotes, blank lines and import order as ruff formats them). Run
# it in a package folder holding large_dataset.csv, one column per feature.
import pandas as pd
from inference_example import ModelInference

# Initialize model
inference = ModelInference()


# Load data in batches
def process_batches(data_file, batch_size=1000):
    for chunk in pd.read_csv(data_file, chunksize=batch_size):
        # Convert to required format
        features = chunk.to_dict("records")

        # Make predictions
        result = inference.predict(features)

        # Process results
        yield result


# Process large dataset
for batch_result in process_batches("large_dataset.csv"):
    print(f"Batch anomalies: {batch_result['anomaly_count']}")
