"""A stand-in shard worker: sums its slice of the numbers 0..999."""

import argparse

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--shard", type=int, required=True)
shard = parser.parse_args().shard
print(f"shard {shard}:", int(np.arange(1000)[shard::2].sum()))
