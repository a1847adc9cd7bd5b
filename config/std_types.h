/*
 * std_types.h — typedefs the signature parser assumes when it cannot parse a
 * whole preprocessed file (C++ sources, or C using a compiler extension the
 * parser does not know) and falls back to parsing the entry function's
 * prototype alone.
 *
 * You never need to edit this file for your own types: C sources are parsed
 * after the real preprocessor ran, with your typedefs, structs, enums and
 * #includes; in the fallback, the typedefs of your file are collected too,
 * and an unknown type name used through a pointer is taken as a struct.
 * Plain C only (no GCC extensions): pycparser reads it.
 */
typedef signed char int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short uint16_t;
typedef long int32_t;
typedef unsigned long uint32_t;
typedef long long int64_t;
typedef unsigned long long uint64_t;
typedef signed char int_least8_t;
typedef unsigned char uint_least8_t;
typedef short int_least16_t;
typedef unsigned short uint_least16_t;
typedef long int_least32_t;
typedef unsigned long uint_least32_t;
typedef long long int_least64_t;
typedef unsigned long long uint_least64_t;
typedef int int_fast8_t;
typedef unsigned int uint_fast8_t;
typedef int int_fast16_t;
typedef unsigned int uint_fast16_t;
typedef int int_fast32_t;
typedef unsigned int uint_fast32_t;
typedef long long int_fast64_t;
typedef unsigned long long uint_fast64_t;
typedef int intptr_t;
typedef unsigned int uintptr_t;
typedef long long intmax_t;
typedef unsigned long long uintmax_t;
typedef unsigned int size_t;
typedef int ssize_t;
typedef int ptrdiff_t;
typedef _Bool bool;
typedef int wchar_t;
typedef float float32_t;
typedef double float64_t;
typedef int esp_err_t;
