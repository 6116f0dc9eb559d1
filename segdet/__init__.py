"""segdet: semantic segmentation with optional instance masks."""
