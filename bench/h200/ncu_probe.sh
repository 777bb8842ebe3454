#!/usr/bin/env bash
# What Nsight Compute gives on the device machine (issue 11): profile one call of two cases
# through harness/ncu_target.py and dump the report's pages, so the parser is written against
# real output. Usage: bash bench/h200/ncu_probe.sh DIR
set -uo pipefail
dir=$1; mkdir -p "$dir"
ncu --version > "$dir/ncu-version.txt" 2>&1
sections=(--section SpeedOfLight --section Occupancy --section LaunchStats --section ComputeWorkloadAnalysis
          --section MemoryWorkloadAnalysis)
probe() {
    name=$1 spec=$2
    /usr/bin/time -f "%e s wall" ncu --clock-control none --profile-from-start off --target-processes all \
        "${sections[@]}" -f -o "$dir/$name" python3 -m harness.ncu_target --spec "$spec" > "$dir/$name.log" 2>&1
    echo "$name: ncu rc=$?; $(tail -n 1 "$dir/$name.log")"
    ncu -i "$dir/$name.ncu-rep" --page raw --csv > "$dir/$name-raw.csv" 2>&1
    ncu -i "$dir/$name.ncu-rep" --page details --csv > "$dir/$name-details.csv" 2>&1
    ncu -i "$dir/$name.ncu-rep" --page details --print-details all > "$dir/$name-details.txt" 2>&1
    ncu -i "$dir/$name.ncu-rep" --page details --print-rule-details > "$dir/$name-rules.txt" 2>&1
    wc -c "$dir/$name"*
}
probe triton-s1024 '{"workload": "triton_attention", "backend": "triton", "batch": 32, "heads": 8, "seq": 1024, "head_dim": 64, "dtype": "float16", "config": {"BLOCK_M": 128, "BLOCK_N": 128, "num_warps": 4, "num_stages": 3, "use_tma": true, "warp_specialize": false, "reverse_m": false, "exp_f16": false}}'
probe cudnn-s1024 '{"workload": "sdpa", "backend": "cudnn", "batch": 32, "heads": 8, "seq": 1024, "head_dim": 64, "dtype": "float16"}'
