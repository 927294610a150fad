"""Baseline A for ``evaluation.bench_service``: what a user would write instead of the service.

A plain FastAPI app with a sync endpoint that runs ``generate`` per request, as tutorials
show. FastAPI runs sync endpoints in its thread pool, so concurrent requests call the model
from several threads at once. Started by the benchmark with uvicorn on 127.0.0.1:

    BENCH_MODEL_DIR=... BENCH_TOKENS=10 python -m uvicorn evaluation.bench_naive_app:app --port PORT
"""
from __future__ import annotations

import io
import os

import torch
from fastapi import FastAPI, File, UploadFile
from PIL import Image
from transformers import BlipForConditionalGeneration, BlipProcessor

MODEL_DIR = os.environ["BENCH_MODEL_DIR"]
TOKENS = int(os.environ.get("BENCH_TOKENS", "10"))
DEVICE = os.environ.get("BENCH_DEVICE", "cpu")

processor = BlipProcessor.from_pretrained(MODEL_DIR)
model = BlipForConditionalGeneration.from_pretrained(MODEL_DIR).to(DEVICE).eval()
app = FastAPI()


@app.get("/ready")
def ready() -> dict:
    return {"status": "ready"}


@app.post("/caption")
def caption(image: UploadFile = File(...)) -> dict:
    picture = Image.open(io.BytesIO(image.file.read())).convert("RGB")
    inputs = processor(images=picture, return_tensors="pt").to(DEVICE)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=TOKENS)
    return {"caption": processor.decode(out[0], skip_special_tokens=True)}
