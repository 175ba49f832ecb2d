"""The H&E stain colour space (Ruifrok & Johnston): shared by training-time stain jitter and the colour-shift
stress test, so both move colours along the same stain axes."""
from __future__ import annotations

import numpy as np

# H&E-DAB stain vectors (rows: haematoxylin, eosin, DAB) in optical density space.
RGB_FROM_HED = np.array([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], np.float32)
RGB_FROM_HED /= np.linalg.norm(RGB_FROM_HED, axis=1, keepdims=True)
HED_FROM_RGB = np.linalg.inv(RGB_FROM_HED).astype(np.float32)
