# Pattern 1 of the package specification, as written there. Run it in the
# folder of the demo package, whose features are the specification's.
from inference_example import ModelInference

# Initialize model
inference = ModelInference()

# Prepare features (must match training feature names)
features = [
    {
        "auth_failure_ratio": 0.1,
        "deauth_ratio": 0.05,
        "beacon_ratio": 0.3,
        "unique_mac_count": 15,
        "unique_ssid_count": 8,
        "mean_signal_strength": -45.0,
        "std_signal_strength": 5.0,
        "mean_data_rate": 54.0,
        "mean_packet_loss": 0.02,
        "error_ratio": 0.01,
        "warning_ratio": 0.03,
        "mean_hour_of_day": 14.0,
        "mean_day_of_week": 3.0,
        "mean_time_between_events": 120.0,
        "total_devices": 25,
        "max_device_activity": 0.8,
        "mean_device_activity": 0.4,
    }
]

# Make predictions
result = inference.predict(features)
print(f"Anomalies: {result['anomaly_count']}/{result['total_samples']}")
