#include "sdnotify.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <systemd/sd-daemon.h>

#include "pb.h"

static atomic_llong last_ping_ms;

void pb_sd_ready(const char *status)
{
	sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void pb_sd_stopping(const char *status)
{
	sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

long pb_sd_watchdog_ms(void)
{
	uint64_t usec = 0;

	/* 0 keeps WATCHDOG_USEC for the threads that call it later. */
	if (sd_watchdog_enabled(0, &usec) <= 0)
		return 0;
	return (long)(usec / 1000);
}

void pb_sd_alive(void)
{
	static _Atomic long interval_ms = -1;
	long iv = interval_ms;
	int64_t now = pb_now_ms();

	if (iv < 0)
		interval_ms = iv = pb_sd_watchdog_ms();
	if (iv == 0 || now - last_ping_ms < iv / 2)
		return;
	last_ping_ms = now;
	sd_notify(0, "WATCHDOG=1");
}
