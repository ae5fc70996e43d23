// SPDX-License-Identifier: Apache-2.0
/*
 * The "db2" datastore's pure parts: what the Db2 tools print, parsed;
 * the names it accepts; its config and strategy checks (open runs no
 * command).  The texts are the Db2 11.5 CLP's.
 */
#include "check.h"
#include "datastore.h"
#include "db2_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

static const char cfg_off[] =
	"\n"
	"       Database Configuration for Database SAMPLE\n"
	"\n"
	" Database configuration release level                    = 0x1500\n"
	" Backup pending                                          = NO\n"
	"\n"
	" All committed transactions have been written to disk    = YES\n"
	" Rollforward pending                                     = NO\n"
	" Restore pending                                         = NO\n"
	"\n"
	" First log archive method                 (LOGARCHMETH1) = OFF\n"
	" Archive compression for logarchmeth1    (LOGARCHCOMPR1) = OFF\n"
	" Options for logarchmeth1                  (LOGARCHOPT1) =\n"
	" Second log archive method                (LOGARCHMETH2) = OFF\n";

static const char cfg_disk[] =
	" Backup pending                                          = YES\n"
	" Rollforward pending                                     = DATABASE\n"
	" Restore pending                                         = NO\n"
	" First log archive method                 (LOGARCHMETH1) = "
	"DISK:/home/db2inst1/db2inst1/ArchiveLogs/\n"
	" Archive compression for logarchmeth1    (LOGARCHCOMPR1) = OFF\n"
	" Second log archive method                (LOGARCHMETH2) = OFF\n";

static void test_cfg(void)
{
	struct db2_cfg c;

	CHECK_EQ(db2_parse_cfg(cfg_off, &c), 0);
	CHECK(!strcmp(c.logarchmeth1, "OFF"));
	CHECK(!strcmp(c.logarchmeth2, "OFF"));
	CHECK(!db2_cfg_recoverable(&c));
	CHECK(!c.backup_pending && !c.rollfwd_pending && !c.restore_pending);

	CHECK_EQ(db2_parse_cfg(cfg_disk, &c), 0);
	CHECK(!strcmp(c.logarchmeth1,
		      "DISK:/home/db2inst1/db2inst1/ArchiveLogs/"));
	CHECK(db2_cfg_recoverable(&c));
	CHECK(c.backup_pending && c.rollfwd_pending && !c.restore_pending);

	/* LOGRETAIN and the second method count as archive logging too */
	CHECK_EQ(db2_parse_cfg(" First log archive method (LOGARCHMETH1) = "
			       "LOGRETAIN\n",
			       &c),
		 0);
	CHECK(db2_cfg_recoverable(&c));
	CHECK_EQ(db2_parse_cfg(" First log archive method (LOGARCHMETH1) = "
			       "OFF\n Second log archive method "
			       "(LOGARCHMETH2) = TSM\n",
			       &c),
		 0);
	CHECK(db2_cfg_recoverable(&c));
	/* the archive compression line must not be taken for the method */
	CHECK_EQ(db2_parse_cfg(" Archive compression for logarchmeth1 "
			       "(LOGARCHCOMPR1) = ON\n",
			       &c),
		 -EBADMSG);
	CHECK_EQ(db2_parse_cfg("", &c), -EBADMSG);
	CHECK_EQ(db2_parse_cfg("SQL1013N  The database alias name or database "
			       "name \"X\" could not be found.\n",
			       &c),
		 -EBADMSG);
}

static const char dbsize_out[] =
	"\n"
	"  Value of output parameters\n"
	"  --------------------------\n"
	"  Parameter Name  : SNAPSHOTTIMESTAMP\n"
	"  Parameter Value : 2015-08-10-11.09.06.992189\n"
	"\n"
	"  Parameter Name  : DATABASESIZE\n"
	"  Parameter Value : 101294080\n"
	"\n"
	"  Parameter Name  : DATABASECAPACITY\n"
	"  Parameter Value : 35067944960\n"
	"\n"
	"  Return Status = 0\n";

static void test_dbsize(void)
{
	uint64_t n = 0;

	CHECK_EQ(db2_parse_dbsize(dbsize_out, &n), 0);
	CHECK_EQ(n, 101294080);
	/* DATABASECAPACITY is not the size */
	CHECK_EQ(db2_parse_dbsize("  Parameter Name  : DATABASECAPACITY\n"
				  "  Parameter Value : 7\n",
				  &n),
		 -EBADMSG);
	CHECK_EQ(db2_parse_dbsize("  Parameter Name  : DATABASESIZE\n"
				  "  Parameter Value : -\n",
				  &n),
		 -EBADMSG);
	CHECK_EQ(db2_parse_dbsize("  Parameter Name  : DATABASESIZE\n"
				  "  Parameter Value : 12x\n",
				  &n),
		 -EBADMSG);
	CHECK_EQ(db2_parse_dbsize("", &n), -EBADMSG);
}

static void test_value(void)
{
	uint64_t n = 9;

	CHECK_EQ(db2_parse_value("\n1\n--------------------\n"
				 "                4096\n\n"
				 "  1 record(s) selected.\n",
				 &n),
		 0);
	CHECK_EQ(n, 4096);
	CHECK_EQ(db2_parse_value("\n1\n-----\n    -\n\n"
				 "  1 record(s) selected.\n",
				 &n),
		 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(db2_parse_value("\n1\n-----\n\n  0 record(s) selected.\n", &n),
		 -EBADMSG);
	CHECK_EQ(db2_parse_value("no table\n", &n), -EBADMSG);
}

static void test_backup_ts(void)
{
	char ts[DB2_TS_LEN + 1] = "";

	CHECK_EQ(db2_parse_backup_ts("\nBackup successful. The timestamp for "
				     "this backup image is : 20261122030000\n",
				     ts),
		 0);
	CHECK(!strcmp(ts, "20261122030000"));
	CHECK_EQ(db2_parse_backup_ts("Backup successful. The timestamp for "
				     "this backup image is : 2026112203\n",
				     ts),
		 -EBADMSG);
	CHECK_EQ(db2_parse_backup_ts("Backup successful. The timestamp for "
				     "this backup image is : 202611220300001\n",
				     ts),
		 -EBADMSG);
	CHECK_EQ(db2_parse_backup_ts("SQL2062N  An error occurred\n", ts),
		 -EBADMSG);
}

static void test_level(void)
{
	char v[32];

	CHECK_EQ(
		db2_parse_level(
			"DB21085I  This instance or install (instance name, "
			"where applicable: \"db2inst1\") uses \"64\" bits and "
			"DB2 code release \"SQL11058\" with level identifier "
			"\"0609010F\".\nInformational tokens are \"DB2 "
			"v11.5.8.0\", \"s2209201700\", \"DYN2209201700AMD64\", "
			"and Fix Pack \"0\".\n",
			v, sizeof(v)),
		0);
	CHECK(!strcmp(v, "11.5.8.0"));
	CHECK_EQ(
		db2_parse_level("Informational tokens are \"DB2 v10.5\"", v, 4),
		-EBADMSG);
	CHECK_EQ(db2_parse_level("DB21085I nothing", v, sizeof(v)), -EBADMSG);
}

static void test_ckbkp(void)
{
	CHECK_EQ(db2_parse_ckbkp("\n[1] Buffers processed:  ####\n\n"
				 "Image Verification Complete - successful.\n"),
		 0);
	CHECK_EQ(db2_parse_ckbkp("[1] Buffers processed:  #\nERROR!  x\n"
				 "Image Verification Complete - ERRORS "
				 "DETECTED:  1\n"),
		 -EBADMSG);
	CHECK_EQ(db2_parse_ckbkp(""), -EBADMSG);
}

static void test_df(void)
{
	uint64_t n = 0;

	CHECK_EQ(
		db2_parse_df("Filesystem     1024-blocks  Used Available "
			     "Capacity Mounted on\n"
			     "tmpfs                 1024     0      1024       "
			     "0% /mnt/x\n",
			     &n),
		0);
	CHECK_EQ(n, 1024 * 1024);
	/* a device name with a space */
	CHECK_EQ(db2_parse_df("Filesystem 1024-blocks Used Available Capacity "
			      "Mounted on\nmy dev 100 40 60 40% /\n",
			      &n),
		 0);
	CHECK_EQ(n, 60 * 1024);
	CHECK_EQ(db2_parse_df("Filesystem 1024-blocks Used\n", &n), -EBADMSG);
	CHECK_EQ(db2_parse_df("", &n), -EBADMSG);
}

static void test_sql_message(void)
{
	char line[256];
	char sev = 0;
	int code = 0;

	CHECK(db2_sql_message("\nSQL1035N  The operation failed because the "
			      "specified database cannot be connected to in "
			      "the mode specified.  SQLSTATE=57019\n",
			      line, sizeof(line), &code, &sev));
	CHECK_EQ(code, 1035);
	CHECK_EQ(sev, 'N');
	CHECK(!strncmp(line, "SQL1035N  The operation", 23));
	CHECK_EQ(db2_sql_errno(code), EBUSY);
	CHECK(db2_sql_message("SQL2540W  Restore is successful, however a "
			      "warning \"2539\" was encountered.\n",
			      line, sizeof(line), &code, &sev));
	CHECK_EQ(code, 2540);
	CHECK_EQ(sev, 'W');
	CHECK(db2_sql_message("SQL0968C  The file system is full.\n", line,
			      sizeof(line), &code, &sev));
	CHECK_EQ(db2_sql_errno(code), ENOSPC);
	CHECK_EQ(db2_sql_errno(1013), ENOENT);
	CHECK_EQ(db2_sql_errno(12345), EIO);
	/* SQLSTATE=... is not a message, nor is SQL text */
	CHECK(!db2_sql_message("  SQLSTATE=57019\nSQL statement\n"
			       "SQL12N short\n",
			       line, sizeof(line), &code, &sev));
}

static void test_names(void)
{
	char s[16] = "sample";

	CHECK_EQ(db2_check_dbname("SAMPLE"), 0);
	CHECK_EQ(db2_check_dbname("a@#$1"), 0);
	CHECK_EQ(db2_check_dbname("TOOLONGNM"), -EINVAL);
	CHECK_EQ(db2_check_dbname("1ABC"), -EINVAL);
	CHECK_EQ(db2_check_dbname(""), -EINVAL);
	CHECK_EQ(db2_check_dbname("A B"), -EINVAL);
	CHECK_EQ(db2_check_dbname("-X"), -EINVAL);
	db2_upper(s);
	CHECK(!strcmp(s, "SAMPLE"));

	CHECK_EQ(db2_check_user("db2inst1"), 0);
	CHECK_EQ(db2_check_user("-rf"), -EINVAL);
	CHECK_EQ(db2_check_user("a b"), -EINVAL);

	CHECK_EQ(db2_check_dir("/home/db2inst1/db2inst1/backup"), 0);
	CHECK_EQ(db2_check_dir("relative"), -EINVAL);
	CHECK_EQ(db2_check_dir("/"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a/../b"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a/./b"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a b"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a)b"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a\"b"), -EINVAL);
	CHECK_EQ(db2_check_dir("/a..b/c"), 0);
}

static void test_image_names(void)
{
	char alias[DB2_DBNAME_MAX + 1], ts[DB2_TS_LEN + 1];

	CHECK_EQ(db2_image_parse("SAMPLE.0.db2inst1.DBPART000.20261122030000."
				 "001",
				 alias, ts),
		 0);
	CHECK(!strcmp(alias, "SAMPLE"));
	CHECK(!strcmp(ts, "20261122030000"));
	CHECK_EQ(db2_image_parse("SAMPLE.0.DB2INST1.NODE0000.CATN0000."
				 "20101012130622.001",
				 alias, ts),
		 0);
	CHECK(!strcmp(ts, "20101012130622"));
	CHECK(db2_image_of("SAMPLE.0.db2inst1.DBPART000.20261122030000.002",
			   "sample", "20261122030000"));
	CHECK(!db2_image_of("SAMPLE.0.db2inst1.DBPART000.20261122030000.001",
			    "SAMPLE", "20261122030001"));
	CHECK(!db2_image_of("SAMPLE2.0.db2inst1.DBPART000.20261122030000.001",
			    "SAMPLE", "20261122030000"));
	/* what a tar could smuggle in */
	CHECK_EQ(db2_image_parse("../SAMPLE.0.i.DBPART000.20261122030000.001",
				 NULL, NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.0.i/x.DBPART000.20261122030000.001",
				 NULL, NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.0.i.DBPART000.20261122030000.001.",
				 NULL, NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.0.i.DBPART000.20261122030000.001x",
				 NULL, NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.3.i.DBPART000.20261122030000.001",
				 NULL, NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.0.i.DBPART00.20261122030000.001", NULL,
				 NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("SAMPLE.0.i.DBPART000.2026112203000.001", NULL,
				 NULL),
		 -EINVAL);
	CHECK_EQ(db2_image_parse("backupfs-db2.json", NULL, NULL), -EINVAL);
}

static json_t *manifest(const char *images_json)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"format\": \"db2-images-tar\", \"version\": 1, "
		 "\"databases\": [{\"name\": \"SAMPLE\", \"timestamp\": "
		 "\"20261122030000\", \"online\": true, \"images\": %s}]}",
		 images_json);
	return json_loads(text, 0, NULL);
}

static void test_manifest(void)
{
	char err[256];
	json_t *m;

	m = manifest("[\"SAMPLE.0.i.DBPART000.20261122030000.001\"]");
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), 0);
	json_decref(m);
	/* an image of another time, a path, a repeat, none */
	m = manifest("[\"SAMPLE.0.i.DBPART000.20261122030001.001\"]");
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	json_decref(m);
	m = manifest("[\"/etc/SAMPLE.0.i.DBPART000.20261122030000.001\"]");
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	json_decref(m);
	m = manifest("[\"SAMPLE.0.i.DBPART000.20261122030000.001\", "
		     "\"SAMPLE.0.i.DBPART000.20261122030000.001\"]");
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	json_decref(m);
	m = manifest("[]");
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	json_decref(m);
	m = json_loads("{\"format\": \"tar\", \"version\": 1}", 0, NULL);
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	json_decref(m);
	m = json_loads("{\"format\": \"db2-images-tar\", \"version\": 2, "
		       "\"databases\": []}",
		       0, NULL);
	CHECK_EQ(db2_manifest_check(m, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "version 2") != NULL);
	json_decref(m);
}

/* open validates the config without running anything. */
static int open_conf(const char *text, struct bfs_datastore **ds, char *err,
		     size_t errlen)
{
	json_t *conf = json_loads(text, 0, NULL);
	int rc;

	*ds = NULL;
	if (!conf)
		return -999;
	rc = bfs_datastore_open("db2a", conf, "/nonexistent", ds, err, errlen);
	json_decref(conf);
	return rc;
}

static void test_open(void)
{
	struct bfs_datastore *ds;
	char err[512];

	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"instance_user\": "
			   "\"db2inst1\", \"databases\": [\"sample\"], "
			   "\"backup_dir\": \"/home/db2inst1/backup\"}",
			   &ds, err, sizeof(err)),
		 0);
	bfs_datastore_close(ds);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": "
			   "[\"SAMPLE\", \"sample\"], \"backup_dir\": \"/b\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "twice") != NULL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": "
			   "[\"TOOLONGNAME\"], \"backup_dir\": \"/b\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [], "
			   "\"backup_dir\": \"/b\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [\"A\"], "
			   "\"backup_dir\": \"/b c\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "backup_dir") != NULL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [\"A\"]}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [\"A\"], "
			   "\"backup_dir\": \"/b\", \"archive_log_dir\": "
			   "\"logs\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [\"A\"], "
			   "\"backup_dir\": \"/b\", \"instance_user\": "
			   "\"-x\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": [\"A\"], "
			   "\"backup_dir\": \"/b\", \"database\": \"A\"}",
			   &ds, err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "unknown key 'database'") != NULL);
}

static int strategy(struct bfs_datastore *ds, const char *text, char *err,
		    size_t errlen)
{
	json_t *s = json_loads(text, 0, NULL);
	int rc = bfs_datastore_check_strategy(ds, s, err, errlen);

	json_decref(s);
	return rc;
}

static void test_strategy(void)
{
	struct bfs_datastore *ds;
	char err[512];

	CHECK_EQ(open_conf("{\"datastore\": \"db2\", \"databases\": "
			   "[\"SAMPLE\", \"ORDERS\"], \"backup_dir\": \"/b\"}",
			   &ds, err, sizeof(err)),
		 0);
	if (!ds)
		return;
	CHECK_EQ(strategy(ds, "{}", err, sizeof(err)), 0);
	CHECK_EQ(strategy(ds, "{\"mode\": \"offline\"}", err, sizeof(err)), 0);
	CHECK_EQ(strategy(ds, "{\"tables\": [\"orders\"]}", err, sizeof(err)),
		 0);
	CHECK_EQ(strategy(ds, "{\"type\": \"incremental\"}", err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "incremental") != NULL);
	CHECK_EQ(strategy(ds, "{\"format\": \"agnostic\"}", err, sizeof(err)),
		 -EINVAL);
	CHECK_EQ(strategy(ds, "{\"tables\": [\"OTHER\"]}", err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "OTHER") != NULL);
	CHECK_EQ(strategy(ds, "{\"snapshot\": \"btrfs\"}", err, sizeof(err)),
		 -EINVAL);
	bfs_datastore_close(ds);
}

int main(void)
{
	RUN(test_cfg);
	RUN(test_dbsize);
	RUN(test_value);
	RUN(test_backup_ts);
	RUN(test_level);
	RUN(test_ckbkp);
	RUN(test_df);
	RUN(test_sql_message);
	RUN(test_names);
	RUN(test_image_names);
	RUN(test_manifest);
	RUN(test_open);
	RUN(test_strategy);
	return check_summary();
}
