"""DataValidationGate (component.py) and the anomalies it reads (anomalies.py)."""
