#!/usr/bin/env python3
"""Every op definition in src/ has a row in docs/derivatives.md.

Usage: check_derivatives_doc.py SOURCE_ROOT

Op names are collected from the C sources the way they are written there:
  - designated initialisers:   .name = "hg_sum_to"
  - positional initialisers:   hg_opdef x = {"hg_where", 3, ...}
                               #define CONCAT_DEF(n) {"hg_func_concat", ...}
  - macros that stringify:     #define DEFINE_BINARY_OP(op, ...) ... "hg_" #op
                               DEFINE_BINARY_OP(add, add_vjp)  -> hg_add
A name is documented when a table row of docs/derivatives.md (a line that
starts with '|') names it, with or without its "hg_" prefix, as a whole word
in its first cell, or a heading (a line that starts with '#') names it in
backticks (a section of its own, e.g. "### Batched — `hg_matmul_batched`"). Exits 1 listing the missing names, and also if fewer than
20 names were found (the parser must not silently find nothing).
"""
import os
import re
import sys


def op_names(src_root):
    names = {}
    ident = r'[A-Za-z_][A-Za-z0-9_]*'
    for dirpath, _, files in os.walk(src_root):
        for fn in sorted(files):
            if not fn.endswith('.c'):
                continue
            path = os.path.join(dirpath, fn)
            with open(path, encoding='utf-8') as f:
                text = f.read()
            rel = os.path.relpath(path, os.path.dirname(src_root))
            found = set()
            found.update(re.findall(r'\.name\s*=\s*"(' + ident + r')"', text))
            found.update(re.findall(r'hg_opdef\s+' + ident + r'\s*(?:\[[^\]]*\])?\s*=\s*\{\s*"(' + ident + r')"',
                                    text))
            found.update(re.findall(r'#define\s+' + ident + r'\([^)]*\)\s*\{\s*"(' + ident + r')"', text))
            # Macros whose body builds the name as "prefix" #param.
            joined = text.replace('\\\n', ' ')
            for m in re.finditer(r'#define\s+(' + ident + r')\(([^)]*)\)(.*)', joined):
                macro, params, body = m.group(1), [p.strip() for p in m.group(2).split(',')], m.group(3)
                if 'hg_opdef' not in body:
                    continue
                # each opdef initialiser: {"prefix" #param "suffix", or .name = "prefix" #param "suffix"
                for d in re.finditer(r'(?:=\s*\{|\.name\s*=)\s*"(' + ident + r'?)"\s*#\s*(' + ident +
                                     r')(?:\s*"([A-Za-z0-9_]*)")?', body):
                    if d.group(2) not in params:
                        continue
                    prefix, index, suffix = d.group(1), params.index(d.group(2)), d.group(3) or ''
                    for call in re.finditer(r'^\s*' + macro + r'\(([^)]*)\)', text, re.M):
                        args = [a.strip() for a in call.group(1).split(',')]
                        if len(args) > index and re.fullmatch(ident, args[index]):
                            found.add(prefix + args[index] + suffix)
            for n in found:
                names.setdefault(n, rel)
    return names


def documented(doc_text):
    words = set()
    for line in doc_text.splitlines():
        if line.startswith('#'):
            words.update(re.findall(r'`([A-Za-z_][A-Za-z0-9_]*)`', line))
            continue
        if not line.startswith('|'):
            continue
        cells = line.split('|')
        if len(cells) < 3:
            continue
        words.update(re.findall(r'[A-Za-z_][A-Za-z0-9_]*', cells[1]))
    return words


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    root = sys.argv[1]
    names = op_names(os.path.join(root, 'src'))
    with open(os.path.join(root, 'docs', 'derivatives.md'), encoding='utf-8') as f:
        words = documented(f.read())
    missing = sorted(n for n in names
                     if n not in words and not (n.startswith('hg_') and n[3:] in words))
    print('%d op definitions found in src/' % len(names))
    if len(names) < 20:
        print('too few op definitions found: the parser is broken')
        return 1
    for n in missing:
        print('missing from docs/derivatives.md: %s (defined in %s)' % (n, names[n]))
    return 1 if missing else 0


if __name__ == '__main__':
    sys.exit(main())
