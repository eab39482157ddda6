/*
 * check.h - the leak check every unit test ends with.
 *
 * Every allocation of hubbub goes through hb_malloc (alloc.h), which counts
 * the bytes alive. The setup remembers that count and the teardown fails the
 * test unless it is back where it was: whatever a test made (requests,
 * connections, subscriptions, messages) must be freed by the code under test
 * by the time the test ends.
 *
 *   cmocka_unit_test_setup_teardown(test_x, hbt_leak_setup, hbt_leak_teardown)
 *   HBT_TEST(test_x)                       the same, shorter
 *
 * A test with its own fixture calls hbt_leak_begin() first thing in its
 * setup and hbt_leak_end() last thing in its teardown, so that the fixture
 * is inside the check.
 *
 * The variant for a test that runs a libuv loop of its own: it hands the loop
 * to hbt_leak_loop(); the teardown then closes the handles still open, runs
 * the loop until every close callback has run (that is where connections and
 * their output are freed), closes the loop, and only then compares.
 */
#ifndef HBT_CHECK_H
#define HBT_CHECK_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <uv.h>

int hbt_leak_setup(void **state);
int hbt_leak_teardown(void **state);

void hbt_leak_begin(void);
void hbt_leak_end(void);

/** Run `loop` to completion and close it before the comparison (the
 * teardown of the current test; the loop's memory is the caller's). */
void hbt_leak_loop(uv_loop_t *loop);

#define HBT_TEST(f) cmocka_unit_test_setup_teardown(f, hbt_leak_setup, hbt_leak_teardown)

#endif
