/* README, "Your first function". */
int add(int a, int b) { return a + b; }
