/* The unit tests' one assertion: counts passes, prints "FAIL file:line: expected … got …" for a
 * failure, and CHECK_DONE() prints the "N passed, N failed" line and gives the exit status. */
#ifndef GW_TEST_CHECK_H
#define GW_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            passed++;                                                                              \
        } else {                                                                                   \
            failed++;                                                                              \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                            \
            printf(__VA_ARGS__);                                                                   \
            printf("\n");                                                                          \
        }                                                                                          \
    } while (0)

#define CHECK_DONE() (printf("%d passed, %d failed\n", passed, failed), failed ? 1 : 0)

#endif
