/*
 * sdnotify.h - systemd's service protocol (sd_notify(3)): readiness for
 * Type=notify units, the watchdog, a status line for `systemctl status`.
 * Each call does nothing when systemd did not ask for it (no NOTIFY_SOCKET,
 * no WatchdogSec=), so the daemons run the same by hand and under tests.
 */
#ifndef PB_SDNOTIFY_H
#define PB_SDNOTIFY_H

/* Ready: the unit's start is done (systemctl start returns). */
void pb_sd_ready(const char *status);
/* Stopping: SIGTERM taken, finishing what is in flight. */
void pb_sd_stopping(const char *status);
/*
 * Alive: pings the watchdog, at most once per half its interval, so a
 * caller may call this on every turn of its loop. The caller calls it only
 * when it has checked that the daemon is making progress.
 */
void pb_sd_alive(void);
/* How often pb_sd_alive must be called at least, ms (0: no watchdog). */
long pb_sd_watchdog_ms(void);

#endif
