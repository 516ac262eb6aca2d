"""Helpers the tests share: real media made with espeak-ng/sox/ffmpeg, and Dagster drivers."""
