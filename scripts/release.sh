#!/usr/bin/env bash
# A citable snapshot: the source archive of one commit with its checksum, ready for an archive that
# mints a DOI (Zenodo, figshare, a university repository). ARTIFACT.md, "A citable snapshot", says
# what to do with it.
#
#   bash scripts/release.sh [OUT]          (make release does the same; OUT defaults to dist/)
#
# Refuses a working tree with changes (a release is a commit, nothing else), and a version that
# differs between pyproject.toml, CITATION.cff and the two packages. Writes, for version V at
# commit C:
#   OUT/gpu-kernel-artifact-V-src.tar.gz   git archive of C (the same bytes for the same commit)
#   OUT/gpu-kernel-artifact-V-src.json     version, commit, commit date, sha256, size, file count
#   OUT/SHA256SUMS                         `sha256sum -c SHA256SUMS` checks the archive
set -euo pipefail

die() { echo "release: $*" >&2; exit 2; }

root=$(git rev-parse --show-toplevel 2>/dev/null) || die "run it inside the project's git checkout"
cd "$root"
out=$(realpath -m "${1:-dist}")

[ -z "$(git status --porcelain --untracked-files=normal)" ] \
  || die "the working tree has changes (git status): commit or stash them; a release is one commit"

version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' pyproject.toml | head -n1)
[ -n "$version" ] || die "pyproject.toml: no version = \"...\" line"
cff=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' CITATION.cff | head -n1)
[ "$cff" = "$version" ] || die "CITATION.cff: version \"$cff\", pyproject.toml \"$version\"; make them the same"
for pkg in artifact harness; do
  v=$(sed -n 's/^__version__ *= *"\(.*\)"/\1/p' "$pkg/__init__.py")
  [ "$v" = "$version" ] || die "$pkg/__init__.py: __version__ \"$v\", pyproject.toml \"$version\"; make them the same"
done
grep -q '^license:' CITATION.cff && [ -f LICENSE ] || die "CITATION.cff names no license, or LICENSE is missing"

commit=$(git rev-parse HEAD)
date=$(git show -s --format=%cI HEAD)
name="gpu-kernel-artifact-$version-src"
mkdir -p "$out"
# git archive's gzip is deterministic (mtime = the commit's time), so the checksum identifies the
# commit's content: anyone can rebuild the archive from the repository and compare.
git archive --format=tar.gz --prefix="gpu-kernel-artifact-$version/" -o "$out/$name.tar.gz.partial" "$commit"
mv -f "$out/$name.tar.gz.partial" "$out/$name.tar.gz"
sum=$(sha256sum "$out/$name.tar.gz" | cut -d' ' -f1)
size=$(stat -c %s "$out/$name.tar.gz")
files=$(git ls-tree -r --name-only "$commit" | wc -l)
printf '%s  %s\n' "$sum" "$name.tar.gz" > "$out/SHA256SUMS.partial" && mv -f "$out/SHA256SUMS.partial" "$out/SHA256SUMS"
cat > "$out/$name.json.partial" <<EOF
{
  "kind": "source_release",
  "schema_version": 1,
  "version": "$version",
  "commit": "$commit",
  "commit_date": "$date",
  "archive": "$name.tar.gz",
  "sha256": "$sum",
  "size_bytes": $size,
  "files": $files
}
EOF
mv -f "$out/$name.json.partial" "$out/$name.json"
echo "release: $out/$name.tar.gz ($size bytes, $files files, sha256 $sum) from $commit"
echo "next: upload it with CITATION.cff to an archive that mints a DOI, then add the DOI to CITATION.cff (ARTIFACT.md, \"A citable snapshot\")"
