"""The desktop app: live video with tracked skeletons, smoothing controls, a jitter meter and recording."""
