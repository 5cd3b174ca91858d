/* The slots the agent's threads share (handover.h): each shard's fetcher
 * gets its share of the free slots, and together they never hold more than
 * concurrency; jobs go to their shard's recorder. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"
#include "pb.h"
#include "unit.h"

static int wakes;

static void wake(void)
{
	wakes++;
}

static job *jobs(int n, int shard, const char *dest)
{
	job *list = NULL;
	int i;

	for (i = 0; i < n; i++) {
		job *jb = calloc(1, sizeof(*jb));

		jb->shard = shard;
		pb_strlcpy(jb->dest, dest, sizeof(jb->dest));
		jb->next = list;
		list = jb;
	}
	return list;
}

static int count_and_free(job *list)
{
	int n = 0;

	while (list) {
		job *nx = list->next;

		free(list);
		list = nx;
		n++;
	}
	return n;
}

void unit_tests(void)
{
	static const char d1[] = "00000000000000a1", d2[] = "00000000000000b2";
	atomic_int stop = 0, quit = 0;
	job *list;
	int a, b, c;

	CHECK(handover_init(10, 4, 2, wake) == PB_OK, "init");
	/* Two shards, 10 slots: half of the free ones each, rounded up,
	 * reserved at once, so that the two together stay within 10. */
	a = handover_wait_slots(100, &stop);
	b = handover_wait_slots(100, &stop);
	c = handover_wait_slots(100, &stop);
	CHECK(a == 5 && b == 3 && c == 1, "shares %d, %d, %d", a, b, c);
	CHECK(handover_wait_slots(100, &stop) == 1, "the last free slot");
	CHECK(handover_wait_slots(100, &stop) == 0, "none left (after a tick)");
	CHECK(handover_wait_slots(2, &stop) == 0, "still none");
	/* The takes come back: 5 reserved, 3 taken on shard 0; 3 reserved,
	 * none taken; 1 and 1 reserved, 1 and 1 taken on shard 1. */
	CHECK(handover_give(jobs(3, 0, d1), a) == 3, "3 held");
	CHECK(handover_give(NULL, b) == 3, "a take of none releases its slots");
	CHECK(handover_give(jobs(1, 1, d2), c) == 4, "4 held");
	CHECK(handover_give(jobs(1, 1, d2), 1) == 5, "5 held");
	CHECK(handover_held() == 5 && handover_held_in(0) == 3 && handover_held_in(1) == 2,
	      "held %ld: %ld + %ld", handover_held(), handover_held_in(0), handover_held_in(1));
	CHECK(wakes == 4, "the deliverer woken for each hand-over: %d", wakes);
	/* The batch bounds a take too. */
	CHECK(handover_wait_slots(2, &stop) == 2, "batch 2 of 5 free");
	CHECK(handover_give(NULL, 2) == 5, "released");
	/* The deliverer takes them all; each finished job goes to its own
	 * shard's recorder. */
	list = handover_take();
	while (list) {
		job *nx = list->next;

		handover_finished(list);
		list = nx;
	}
	list = handover_wait_finished(1, &quit);
	CHECK(count_and_free(list) == 2, "shard 1's recorder gets its 2");
	list = handover_wait_finished(0, &quit);
	CHECK(count_and_free(list) == 3, "shard 0's recorder gets its 3");
	CHECK(handover_recorded(0, 3) == 2 && handover_recorded(1, 2) == 0, "recorded");
	CHECK(handover_held_in(0) == 0 && handover_held_in(1) == 0, "nothing held");
	CHECK(!handover_all_done(), "not done while the fetchers run");
	handover_fetcher_done();
	CHECK(!handover_all_done(), "one of two fetchers done");
	handover_fetcher_done();
	CHECK(handover_all_done(), "both fetchers done, nothing held");
	handover_quit(&quit);
	CHECK(handover_wait_finished(0, &quit) == NULL, "a recorder leaves once quit");
	handover_cleanup();
}
