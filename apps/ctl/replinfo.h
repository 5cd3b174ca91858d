/*
 * replinfo.h - what pbctl reads in a master's INFO replication:
 *
 *   master_repl_offset:821
 *   slave0:ip=127.0.0.1,port=6391,state=online,offset=821,lag=0
 */
#ifndef PB_REPLINFO_H
#define PB_REPLINFO_H

#define PB_REPLICAS_MAX 16

typedef struct pb_replica_info {
	char ip[64];
	long port;
	char state[32];
	long offset; /* bytes of the replication stream it has */
	long lag;    /* seconds since its last acknowledgement */
} pb_replica_info;

typedef struct pb_repl_info {
	long master_offset;
	int nreplicas;
	pb_replica_info replicas[PB_REPLICAS_MAX];
} pb_repl_info;

/* Parse INFO replication text. PB_OK, or PB_ERR_FORMAT without the master's
 * offset or with a replica line that does not parse. */
int pb_repl_info_parse(const char *text, pb_repl_info *out);
/* Bytes the furthest-behind replica in state "online" lacks; -1 if none. */
long pb_repl_info_behind(const pb_repl_info *info);

#endif
