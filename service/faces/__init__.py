"""The face engine: safe decoding, detection, encoding, matching; no database, no web."""

# The encoder the engine's encodings come from. The service stores it beside every sealed
# encoding: an encoding of another encoder is made again before anything is compared with it
# (service/reencode.py). "dlib" was dlib's ResNet, the engine's encoder until SFace replaced it;
# "sface" was SFace on faces aligned by dlib's five landmarks, until stop 34 averaged that with
# SFace on the same faces aligned by the face mesh's points: the same network, other encodings.
ENCODER = "sface-mean"
