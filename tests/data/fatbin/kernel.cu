// A one-kernel library for reprolock's fatbin scanner tests (see build.sh).
__global__ void add(float *x, float a) { x[threadIdx.x] += a; }
extern "C" void launch(float *x) { add<<<1, 32>>>(x, 1.0f); }
