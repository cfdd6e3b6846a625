"""Readers and writers: image folders + manifest, insightface RecordIO, benchmark .bin files, shards."""
