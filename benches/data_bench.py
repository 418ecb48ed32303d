"""The data benchmark of issue 42 (docs/speed.md, "Corpora"): tokenization throughput of
growlm's token store against the Python `tokenizers` library's batch encoding of the same
files with the same tokenizer, peak memory while training from the store, and the time to
open a warm store.

    python benches/data_bench.py --gb 2 [--growlm target/release/growlm] [--work /tmp/databench]

Needs `tokenizers` in this Python. The corpus is generated: documents of 1 to 40 verses of
the King James Bible (runs/corpora/kjv.txt; `sh experiments/corpora/kjv.sh` fetches it),
shuffled, written as JSONL shards of about 256 MB with an `id` and a `text` field. The
GPT-2 tokenizer for `tokenizers` is built from the vocab.json and merges.txt that growlm
exports (its ids are checked against growlm's on the first shard's documents).
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None):
    """Runs cmd under /usr/bin/time -v: (wall seconds, peak RSS in MB, stdout)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) / 1024
    return wall, rss, p.stdout


def make_corpus(out, gb):
    verses = [l.strip() for l in open(os.path.join(ROOT, "runs/corpora/kjv.txt"), encoding="utf-8") if l.strip()]
    rng = random.Random(0)
    os.makedirs(out, exist_ok=True)
    target, written, shard, doc = gb * 1e9, 0, 0, 0
    while written < target:
        path = os.path.join(out, f"part-{shard:04}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            size = 0
            while size < 256e6 and written + size < target:
                start = rng.randrange(len(verses))
                text = "\n".join(verses[start:start + rng.randint(1, 40)])
                line = json.dumps({"id": doc, "text": text}) + "\n"
                f.write(line)
                size += len(line.encode("utf-8"))
                doc += 1
        written += size
        shard += 1
    return written


def gpt2_tokenizer_json(growlm, work, env):
    """growlm's GPT-2 files, exported from a 1-step run, as a `tokenizers` tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders
    run, exp = os.path.join(work, "gpt2-run"), os.path.join(work, "gpt2-export")
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(exp, ignore_errors=True)
    sample = os.path.join(ROOT, "crates/growlm-data/tests/fixtures/corpus/same/docs.jsonl")
    subprocess.run([growlm, "train", "--config", "tiny", "--data", sample, "--max-steps", "4", "--out", run,
                    "--set", 'data.tokenizer="gpt2"', "--set", "data.valid_fraction=0.25",
                    "--set", "data.valid_batches=1"], check=True, capture_output=True, env=env)
    subprocess.run([growlm, "export", run, "--out", exp], check=True, capture_output=True, env=env)
    tok = Tokenizer(models.BPE.from_file(os.path.join(exp, "vocab.json"), os.path.join(exp, "merges.txt")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(["<|endoftext|>"])
    path = os.path.join(work, "gpt2-tokenizer.json")
    tok.save(path)
    # The same ids as growlm's GPT-2 (tiktoken-rs ranks) on the fixture's documents.
    texts = [json.loads(l)["text"] for l in open(sample, encoding="utf-8")]
    ids = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    held = [int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "big") < 0.25 * 2.0**64 for t in texts]
    want = [i for d, v in zip(ids, held) if not v for i in d + [50256]]
    stores = os.path.join(env["GROWLM_CACHE"], "stores")
    got = None
    for s in os.listdir(stores):
        m = json.load(open(os.path.join(stores, s, "manifest.json")))
        if m["tokenizer"] == "gpt2" and m["sources"][0]["path"] == sample:
            raw = open(os.path.join(stores, s, "00000.train.u16"), "rb").read()
            got = list(struct.unpack(f"<{len(raw) // 2}H", raw))
    if got != want:
        sys.exit("the tokenizers GPT-2 built from growlm's files does not give growlm's ids")
    return path


def python_tokenize(files, tokenizer_json, batch=1024):
    """Reads the JSONL files and batch-encodes their text: (seconds, tokens)."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer_json)
    t0, n = time.perf_counter(), 0
    for path in files:
        texts = []
        with open(path, encoding="utf-8") as f:
            for line in f:
                texts.append(json.loads(line)["text"])
                if len(texts) == batch:
                    n += sum(len(e.ids) + 1 for e in tok.encode_batch(texts, add_special_tokens=False))
                    texts = []
        if texts:
            n += sum(len(e.ids) + 1 for e in tok.encode_batch(texts, add_special_tokens=False))
    return time.perf_counter() - t0, n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=2.0)
    ap.add_argument("--growlm", default=os.path.join(ROOT, "target/release/growlm"))
    ap.add_argument("--work", default="/tmp/databench")
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    corpus = os.path.join(a.work, "corpus")
    if not os.path.isdir(corpus):
        print(f"writing {a.gb} GB of JSONL to {corpus}", flush=True)
        make_corpus(corpus, a.gb)
    files = sorted(os.path.join(corpus, f) for f in os.listdir(corpus))
    size = sum(os.path.getsize(f) for f in files)
    env = dict(os.environ, GROWLM_CACHE=os.path.join(a.work, "cache"))
    tj = gpt2_tokenizer_json(a.growlm, a.work, env)
    res = {"bytes": size, "files": len(files), "cores": os.cpu_count()}
    glob = os.path.join(corpus, "*.jsonl")

    def prepare(tokenizer):
        return [a.growlm, "train", "--config", "llama-d64", "--data", glob, "--prepare-data",
                "--set", f"data.tokenizer={tokenizer}"]

    for name, tokenizer in [("gpt2 (tiktoken-rs)", '"gpt2"'), ("tokenizer.json (tokenizers crate)", f'{{file="{tj}"}}')]:
        shutil.rmtree(env["GROWLM_CACHE"], ignore_errors=True)
        wall, rss, out = timed(prepare(tokenizer), env)
        res[f"growlm {name}"] = {"s": wall, "MB/s": size / wall / 1e6, "peak_rss_MB": rss, "out": out.strip()}
        print(name, res[f"growlm {name}"], flush=True)
    # Warm: the store is there; opening it checks every source and shard (sizes and times).
    wall, rss, _ = timed(prepare(f'{{file="{tj}"}}'), env)
    res["warm open (prepare-data on the built store)"] = {"s": wall, "peak_rss_MB": rss}
    print(res["warm open (prepare-data on the built store)"], flush=True)
    s, n = python_tokenize(files, tj)
    res["python tokenizers encode_batch"] = {"s": s, "MB/s": size / s / 1e6, "tokens": n}
    print(res["python tokenizers encode_batch"], flush=True)
    # Training from the store, and the same model from a 1-shard store: the difference is
    # what the corpus size costs in memory.
    small = os.path.join(a.work, "small.jsonl")
    with open(files[0], encoding="utf-8") as f, open(small, "w", encoding="utf-8") as g:
        for line in f:
            g.write(line)
            if g.tell() > 20e6:
                break
    for name, data in [("train from the full store", glob), ("train from a 20 MB store", small)]:
        run = os.path.join(a.work, "run")
        shutil.rmtree(run, ignore_errors=True)
        wall, rss, _ = timed([a.growlm, "train", "--config", "llama-d64", "--data", data, "--out", run,
                              "--max-steps", str(a.steps), "--set", f'data.tokenizer={{file="{tj}"}}',
                              "--set", "train.eval_every=100"], env)
        res[name] = {"s": wall, "peak_rss_MB": rss, "steps": a.steps}
        print(name, res[name], flush=True)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
