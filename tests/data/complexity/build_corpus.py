"""How train.jsonl and heldout.jsonl were split (kept for the record; the two files are the source of truth).

Each tier's tasks were written as ``agent|text|why`` lines, in writing order. The split is fixed: within each
tier, every third task (positions 1, 4, 7, … counting from 0) is held out, except the guide's and the seed's
own one-line examples, which are golden examples of the default policy and always train.
"""
