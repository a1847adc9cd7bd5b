/* README, "Floats". */
float compute(float x, float y) { return x * x + y * y; }
