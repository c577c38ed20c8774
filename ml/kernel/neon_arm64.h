// NEON instructions Go's arm64 assembler has no mnemonics for, encoded by hand from the
// Arm Architecture Reference Manual (A64 Advanced SIMD) and checked with llvm-mc. d, n, m
// are vector register numbers.

// SMLAL{2} Vd.4S, Vn.{4,8}H, Vm.{4,8}H: SMLAL uses lanes 0–3 of n and m, SMLAL2 lanes 4–7;
// each adds four int16·int16 products to the int32 lanes of d, wrapping like Go's int32.
#define SMLAL(d, n, m) WORD $(0x0E608000 | ((m)<<16) | ((n)<<5) | (d))
#define SMLAL2(d, n, m) WORD $(0x4E608000 | ((m)<<16) | ((n)<<5) | (d))

// Float32 arithmetic on 4 lanes: Vd.4S = Vn.4S op Vm.4S.
#define FADD4S(d, n, m) WORD $(0x4E20D400 | ((m)<<16) | ((n)<<5) | (d))
#define FSUB4S(d, n, m) WORD $(0x4EA0D400 | ((m)<<16) | ((n)<<5) | (d))
#define FMUL4S(d, n, m) WORD $(0x6E20DC00 | ((m)<<16) | ((n)<<5) | (d))
#define FDIV4S(d, n, m) WORD $(0x6E20FC00 | ((m)<<16) | ((n)<<5) | (d))
// FMAX/FMIN propagate NaN; FMAXNM gives the other operand for a (quiet) NaN lane.
#define FMAX4S(d, n, m) WORD $(0x4E20F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMIN4S(d, n, m) WORD $(0x4EA0F400 | ((m)<<16) | ((n)<<5) | (d))
#define FMAXNM4S(d, n, m) WORD $(0x4E20C400 | ((m)<<16) | ((n)<<5) | (d))

// FRINTN (round to nearest, ties to even), FCVTZS (float32 to int32, toward zero).
#define FRINTN4S(d, n) WORD $(0x4E218800 | ((n)<<5) | (d))
#define FCVTZS4S(d, n) WORD $(0x4EA1B800 | ((n)<<5) | (d))
// XTN Vd.4H, Vn.4S / XTN2 Vd.8H, Vn.4S: the low halves of the int32 lanes of n into
// lanes 0–3 / 4–7 of d.
#define XTN4H(d, n) WORD $(0x0E612800 | ((n)<<5) | (d))
#define XTN2H8(d, n) WORD $(0x4E612800 | ((n)<<5) | (d))
// SCVTF Vd.4S, Vn.4S: int32 to float32, rounding to nearest even.
#define SCVTF4S(d, n) WORD $(0x4E21D800 | ((n)<<5) | (d))
