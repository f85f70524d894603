#!/bin/sh
# Rebuild the fixtures of tests/test_fatbin.py with NVIDIA's compiler (nvcc 13.0 built the
# committed ones: `nvcc --version` "release 13.0, V13.0.88"). Each library's name says what
# its .nv_fatbin carries; tests/test_fatbin.py states the same and checks it.
set -eu
cd "$(dirname "$0")"
common="-shared -cudart shared -Xcompiler -fPIC"
# SASS sm_75, sm_80; PTX compute_90 (ISA 9.0)
nvcc $common -gencode arch=compute_75,code=sm_75 -gencode arch=compute_80,code=sm_80 \
    -gencode arch=compute_90,code=compute_90 kernel.cu -o libsass75-80_ptx90.so
# arch-specific and family targets: sm_90a, sm_100f, sm_120; PTX compute_120
nvcc $common -gencode arch=compute_90a,code=sm_90a -gencode arch=compute_100f,code=sm_100f \
    -gencode arch=compute_120,code=sm_120 -gencode arch=compute_120,code=compute_120 \
    kernel.cu -o libsass90a-100f-120_ptx120.so
# relocatable device code: the loaded fatbin has sm_80 only; PTX compute_80 sits in
# __nv_relfatbin (for device linking) and is never loaded by the driver
nvcc $common -rdc=true -gencode arch=compute_80,code=sm_80 \
    -gencode arch=compute_80,code=compute_80 kernel.cu -o librdc_sass80.so
strip --strip-debug ./*.so
