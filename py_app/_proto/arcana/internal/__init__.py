# Generated from protos/ by tools/gen_proto.py. Do not edit.
