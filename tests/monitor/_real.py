"""Inputs and outputs of the public datasets in ../shared/data, read once per session."""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA


def need_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is not present (the public datasets live beside the checkout)")
    return SHARED_DATA


@lru_cache
def banking77(split: str) -> tuple[list[str], list[str]]:
    rows = list(csv.DictReader(open(need_data() / "banking77" / f"{split}.csv", encoding="utf-8")))
    return [r["text"] for r in rows], [r["category"] for r in rows]


@lru_cache
def clinc150(split: str) -> list[str]:
    data = json.loads((need_data() / "clinc150" / "data_full.json").read_text(encoding="utf-8"))
    return [text for text, _ in data[split]]


@lru_cache
def bitext() -> list[str]:
    path = need_data() / "bitext-support" / "Bitext_Sample_Customer_Support_Training_Dataset.csv"
    return [r["instruction"] for r in csv.DictReader(open(path, encoding="utf-8"))]


@lru_cache
def restaurant8k(split: str) -> list[str]:
    lines = (need_data() / "restaurant8k" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["input"] for line in lines if line.strip()]
