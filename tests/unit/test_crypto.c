// SPDX-License-Identifier: Apache-2.0
#include "check.h"
#include "crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* Parse a hex literal of a known-answer test into out. */
static void unhex_str(const char *hex, uint8_t *out)
{
	if (bfs_unhex(hex, out, strlen(hex) / 2))
		abort();
}

static int is_zero(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/* RFC 4231 test case 2.  "Jefe" zero-padded to 32 bytes is the same HMAC
 * key: HMAC pads short keys with zeros to the block size anyway. */
static void test_hmac_rfc4231_case2(void)
{
	static const char data[] = "what do ya want for nothing?";
	uint8_t key[BFS_KEY_LEN] = "Jefe", mac[32], want[32];

	unhex_str("5bdcc146bf60754e6a042426089575c7"
		  "5a003f089d2739839dec58b964ec3843",
		  want);
	bfs_hmac_sha256(key, data, strlen(data), mac);
	CHECK(memcmp(mac, want, 32) == 0);
}

/*
 * RFC 5869 test case 3 is HKDF-SHA256 without salt (the repository's
 * kind): PRK = HMAC(32 zero bytes, IKM) and the first 32 bytes of OKM
 * = HMAC(PRK, info || 0x01).  Check that construction against the RFC,
 * then that bfs_keys_derive() is exactly it with the documented info
 * strings.
 */
static void hkdf_expected(const uint8_t *ikm, size_t ikmlen, const char *info,
			  uint8_t out[32])
{
	uint8_t zero[BFS_KEY_LEN] = {0}, prk[32], msg[64];
	size_t n = strlen(info);

	bfs_hmac_sha256(zero, ikm, ikmlen, prk);
	memcpy(msg, info, n);
	msg[n] = 1;
	bfs_hmac_sha256(prk, msg, n + 1, out);
}

static void test_hkdf_rfc5869_case3(void)
{
	uint8_t ikm[22], okm[32], want[32];

	memset(ikm, 0x0b, sizeof(ikm));
	unhex_str("8da4e775a563c18f715f802a063c5a31"
		  "b8a11f5c5ee1879ec3454e5f3c738d2d",
		  want);
	hkdf_expected(ikm, sizeof(ikm), "", okm);
	CHECK(memcmp(okm, want, 32) == 0);
}

static void test_keys_derive(void)
{
	struct bfs_keys k1, k2;
	uint8_t master[BFS_KEY_LEN], want[32];
	const uint8_t *all[6];
	int i, j;

	for (i = 0; i < BFS_KEY_LEN; i++)
		master[i] = (uint8_t)(i * 7 + 1);
	CHECK_EQ(bfs_keys_derive(master, &k1), 0);
	CHECK_EQ(bfs_keys_derive(master, &k2), 0);
	CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0);

	hkdf_expected(master, sizeof(master), "backupfs id v1", want);
	CHECK(memcmp(k1.id, want, 32) == 0);
	hkdf_expected(master, sizeof(master), "backupfs chunk v1", want);
	CHECK(memcmp(k1.chunk, want, 32) == 0);
	hkdf_expected(master, sizeof(master), "backupfs manifest v1", want);
	CHECK(memcmp(k1.manifest, want, 32) == 0);
	hkdf_expected(master, sizeof(master), "backupfs check v1", want);
	CHECK(memcmp(k1.check, want, 32) == 0);
	hkdf_expected(master, sizeof(master), "backupfs gear v1", want);
	CHECK(memcmp(k1.gear, want, 32) == 0);
	hkdf_expected(master, sizeof(master), "backupfs meta v1", want);
	CHECK(memcmp(k1.meta, want, 32) == 0);

	all[0] = k1.id, all[1] = k1.chunk, all[2] = k1.manifest;
	all[3] = k1.check, all[4] = k1.gear, all[5] = k1.meta;
	for (i = 0; i < 6; i++)
		for (j = i + 1; j < 6; j++)
			CHECK(memcmp(all[i], all[j], 32) != 0);

	master[0] ^= 1;
	CHECK_EQ(bfs_keys_derive(master, &k2), 0);
	CHECK(memcmp(k1.id, k2.id, 32) != 0);
}

static void test_chunk_id(void)
{
	struct bfs_keys keys;
	uint8_t master[BFS_KEY_LEN] = {1}, id[32], mac[32];

	CHECK_EQ(bfs_keys_derive(master, &keys), 0);
	bfs_chunk_id(&keys, "hello", 5, id);
	bfs_hmac_sha256(keys.id, "hello", 5, mac);
	CHECK(memcmp(id, mac, 32) == 0);
	bfs_chunk_id(&keys, NULL, 0, id);
	CHECK(memcmp(id, mac, 32) != 0);
}

static void test_sha256(void)
{
	struct bfs_sha256 *s;
	uint8_t out[32], want[32];
	static const char *abc = "abc";
	char big[1000];
	uint8_t one[32];
	size_t i;

	unhex_str("ba7816bf8f01cfea414140de5dae2223"
		  "b00361a396177a9cb410ff61f20015ad",
		  want);
	s = bfs_sha256_new();
	CHECK(s != NULL);
	bfs_sha256_update(s, abc, 1);
	bfs_sha256_update(s, NULL, 0);
	bfs_sha256_update(s, abc + 1, 2);
	bfs_sha256_final(s, out);
	CHECK(memcmp(out, want, 32) == 0);

	unhex_str("e3b0c44298fc1c149afbf4c8996fb924"
		  "27ae41e4649b934ca495991b7852b855",
		  want);
	s = bfs_sha256_new();
	bfs_sha256_final(s, out);
	CHECK(memcmp(out, want, 32) == 0);

	/* Pieces of any size give the digest of the whole. */
	for (i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 31);
	s = bfs_sha256_new();
	bfs_sha256_update(s, big, sizeof(big));
	bfs_sha256_final(s, one);
	s = bfs_sha256_new();
	for (i = 0; i < sizeof(big); i += 7)
		bfs_sha256_update(s, big + i,
				  sizeof(big) - i < 7 ? sizeof(big) - i : 7);
	bfs_sha256_final(s, out);
	CHECK(memcmp(out, one, 32) == 0);

	bfs_sha256_free(bfs_sha256_new());
	bfs_sha256_free(NULL);
}

static void test_hex(void)
{
	uint8_t in[4] = {0x00, 0x9f, 0xa0, 0xff}, out[4];
	char hex[9];

	bfs_hex(in, 4, hex);
	CHECK(strcmp(hex, "009fa0ff") == 0);
	CHECK_EQ(bfs_unhex("009fa0ff", out, 4), 0);
	CHECK(memcmp(in, out, 4) == 0);
	CHECK_EQ(bfs_unhex("009FA0FF", out, 4), 0);
	CHECK(memcmp(in, out, 4) == 0);
	CHECK_EQ(bfs_unhex("009fa0f", out, 4), -EINVAL);
	CHECK_EQ(bfs_unhex("009fa0fg", out, 4), -EINVAL);
	CHECK_EQ(bfs_unhex("00 fa0ff", out, 4), -EINVAL);
	CHECK_EQ(bfs_unhex("", out, 1), -EINVAL);
	CHECK_EQ(bfs_unhex("", out, 0), 0);
	bfs_hex(in, 0, hex);
	CHECK(hex[0] == '\0');
}

static void test_memcmp_ct(void)
{
	CHECK_EQ(bfs_memcmp_ct("abcd", "abcd", 4), 0);
	CHECK(bfs_memcmp_ct("abcd", "abce", 4) != 0);
	CHECK(bfs_memcmp_ct("xbcd", "abcd", 4) != 0);
	CHECK_EQ(bfs_memcmp_ct("a", "b", 0), 0);
}

static void test_random(void)
{
	uint8_t a[64] = {0}, b[64] = {0};

	CHECK_EQ(bfs_random(a, sizeof(a)), 0);
	CHECK_EQ(bfs_random(b, sizeof(b)), 0);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	CHECK(!is_zero(a, sizeof(a)));
	CHECK_EQ(bfs_random(a, 0), 0);
}

/*
 * AES-256-GCM.
 */

/* The GCM specification's test case 16 (AES-256, 96-bit IV, with AAD). */
static void test_gcm_known_answer(void)
{
	uint8_t key[32], iv[12], aad[20], pt[60], ct[60], tag[16], out[60];

	unhex_str("feffe9928665731c6d6a8f9467308308"
		  "feffe9928665731c6d6a8f9467308308",
		  key);
	unhex_str("cafebabefacedbaddecaf888", iv);
	unhex_str("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
	unhex_str("d9313225f88406e5a55909c5aff5269a"
		  "86a7a9531534f7da2e4c303d8a318a72"
		  "1c3c0c95956809532fcf0e2449a6b525"
		  "b16aedf5aa0de657ba637b39",
		  pt);
	unhex_str("522dc1f099567d07f47f37a32a84427d"
		  "643a8cdcbfe5c0c97598a2bd2555d1aa"
		  "8cb08e48590dbb3da7b08b1056828838"
		  "c5f61e6393ba7a0abcc9f662",
		  ct);
	unhex_str("76fc6ece0f4e1768cddf8853bb2d551b", tag);
	CHECK_EQ(bfs_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), out,
			      tag),
		 0);
	CHECK(memcmp(out, pt, sizeof(pt)) == 0);
}

struct sealed {
	uint8_t key[32];
	uint8_t nonce[12];
	uint8_t tag[16];
	uint8_t pt[1000];
	uint8_t ct[1001]; /* one spare byte for the oversized case */
};

static void gcm_seal_fixture(struct sealed *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < sizeof(s->pt); i++)
		s->pt[i] = (uint8_t)(i * 13 + 5);
	CHECK_EQ(bfs_random(s->key, sizeof(s->key)), 0);
	CHECK_EQ(bfs_gcm_seal(s->key, "aad", 3, s->pt, sizeof(s->pt), s->ct,
			      s->nonce, s->tag),
		 0);
}

static void test_gcm_roundtrip(void)
{
	struct sealed s;
	uint8_t out[1000], nonce2[12], tag2[16], buf[1000];

	gcm_seal_fixture(&s);
	CHECK(memcmp(s.ct, s.pt, sizeof(s.pt)) != 0);
	CHECK_EQ(bfs_gcm_open(s.key, s.nonce, "aad", 3, s.ct, sizeof(s.pt), out,
			      s.tag),
		 0);
	CHECK(memcmp(out, s.pt, sizeof(s.pt)) == 0);

	/* In place, and a fresh nonce every time. */
	memcpy(buf, s.pt, sizeof(buf));
	CHECK_EQ(bfs_gcm_seal(s.key, "aad", 3, buf, sizeof(buf), buf, nonce2,
			      tag2),
		 0);
	CHECK(memcmp(nonce2, s.nonce, 12) != 0);
	CHECK(memcmp(buf, s.ct, sizeof(buf)) != 0);
	CHECK_EQ(bfs_gcm_open(s.key, nonce2, "aad", 3, buf, sizeof(buf), buf,
			      tag2),
		 0);
	CHECK(memcmp(buf, s.pt, sizeof(buf)) == 0);

	/* Empty plaintext, no aad: only the tag. */
	CHECK_EQ(bfs_gcm_seal(s.key, NULL, 0, NULL, 0, NULL, nonce2, tag2), 0);
	CHECK_EQ(bfs_gcm_open(s.key, nonce2, NULL, 0, NULL, 0, NULL, tag2), 0);
	tag2[0] ^= 1;
	CHECK_EQ(bfs_gcm_open(s.key, nonce2, NULL, 0, NULL, 0, NULL, tag2),
		 -EBADMSG);
}

/* Open with the given changes: must fail and leave out all zeros. */
static void gcm_expect_bad(const uint8_t *key, const uint8_t *nonce,
			   const char *aad, const uint8_t *ct, size_t len,
			   const uint8_t *tag)
{
	uint8_t out[1001];

	memset(out, 0xaa, sizeof(out));
	CHECK_EQ(bfs_gcm_open(key, nonce, aad, strlen(aad), ct, len, out, tag),
		 -EBADMSG);
	CHECK(is_zero(out, len));
}

static void test_gcm_rejects(void)
{
	struct sealed s;
	uint8_t key[32], nonce[12], tag[16], ct[1001];

	gcm_seal_fixture(&s);
	memcpy(key, s.key, 32);
	key[31] ^= 0x80;
	gcm_expect_bad(key, s.nonce, "aad", s.ct, 1000, s.tag);
	gcm_expect_bad(s.key, s.nonce, "aae", s.ct, 1000, s.tag);
	gcm_expect_bad(s.key, s.nonce, "", s.ct, 1000, s.tag);

	memcpy(ct, s.ct, sizeof(ct));
	ct[500] ^= 0x04;
	gcm_expect_bad(s.key, s.nonce, "aad", ct, 1000, s.tag);
	memcpy(ct, s.ct, sizeof(ct));
	ct[999] ^= 0x01;
	gcm_expect_bad(s.key, s.nonce, "aad", ct, 1000, s.tag);

	memcpy(tag, s.tag, 16);
	tag[15] ^= 0x01;
	gcm_expect_bad(s.key, s.nonce, "aad", s.ct, 1000, tag);
	memcpy(nonce, s.nonce, 12);
	nonce[0] ^= 0x01;
	gcm_expect_bad(s.key, nonce, "aad", s.ct, 1000, s.tag);

	/* Truncated and oversized ciphertext. */
	gcm_expect_bad(s.key, s.nonce, "aad", s.ct, 999, s.tag);
	gcm_expect_bad(s.key, s.nonce, "aad", s.ct, 1001, s.tag);
}

/*
 * Key files.
 */

struct keydir {
	char dir[64];
	char path[128];
};

static int keydir_make(struct keydir *k)
{
	snprintf(k->dir, sizeof(k->dir), "/tmp/bfs-test-crypto-XXXXXX");
	if (!mkdtemp(k->dir))
		return -1;
	snprintf(k->path, sizeof(k->path), "%s/key", k->dir);
	return 0;
}

static void keydir_remove(struct keydir *k)
{
	unlink(k->path);
	rmdir(k->dir);
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, mode);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	fchmod(fd, mode); /* whatever the umask said */
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static void test_key_file_create(void)
{
	uint8_t master[32], again[32];
	char err[256], text[80];
	struct keydir k;
	struct stat st;
	int fd;

	CHECK_EQ(keydir_make(&k), 0);
	CHECK_EQ(bfs_key_file_create(k.path, master, err, sizeof(err)), 0);
	CHECK_EQ(stat(k.path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0600);
	CHECK_EQ(st.st_size, 65);
	fd = open(k.path, O_RDONLY);
	CHECK_EQ(read(fd, text, sizeof(text)), 65);
	close(fd);
	CHECK(text[64] == '\n');
	CHECK_EQ(bfs_unhex(text, again, 32), 0);
	CHECK(memcmp(master, again, 32) == 0);

	memset(again, 0, sizeof(again));
	CHECK_EQ(bfs_key_file_read(k.path, again, err, sizeof(err)), 0);
	CHECK(memcmp(master, again, 32) == 0);

	/* Never overwrite a key. */
	CHECK_EQ(bfs_key_file_create(k.path, again, err, sizeof(err)), -EEXIST);
	CHECK(strstr(err, k.path) != NULL);
	CHECK_EQ(bfs_key_file_read(k.path, again, err, sizeof(err)), 0);
	CHECK(memcmp(master, again, 32) == 0);
	keydir_remove(&k);
}

static void test_key_file_mode(void)
{
	static const char *hex = "000102030405060708090a0b0c0d0e0f"
				 "101112131415161718191a1b1c1d1e1f\n";
	uint8_t master[32];
	char err[256];
	struct keydir k;

	CHECK_EQ(keydir_make(&k), 0);
	CHECK_EQ(write_file(k.path, hex, 0644), 0);
	err[0] = '\0';
	CHECK_EQ(bfs_key_file_read(k.path, master, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, k.path) != NULL);
	CHECK(strstr(err, "0644") != NULL);
	CHECK_EQ(chmod(k.path, 0640), 0);
	CHECK_EQ(bfs_key_file_read(k.path, master, err, sizeof(err)), -EPERM);
	CHECK_EQ(chmod(k.path, 0602), 0);
	CHECK_EQ(bfs_key_file_read(k.path, master, err, sizeof(err)), -EPERM);
	CHECK_EQ(chmod(k.path, 0400), 0);
	CHECK_EQ(bfs_key_file_read(k.path, master, err, sizeof(err)), 0);
	CHECK(master[0] == 0 && master[31] == 0x1f);
	keydir_remove(&k);

	CHECK_EQ(bfs_key_file_read("/nonexistent/bfs/key", master, err,
				   sizeof(err)),
		 -ENOENT);
	CHECK(strstr(err, "/nonexistent/bfs/key") != NULL);
}

static int read_text(const struct keydir *k, const char *text)
{
	uint8_t master[32];
	char err[256];

	if (write_file(k->path, text, 0600))
		return -999;
	return bfs_key_file_read(k->path, master, err, sizeof(err));
}

static void test_key_file_content(void)
{
	static const char *h64 = "000102030405060708090a0b0c0d0e0f"
				 "101112131415161718191a1b1c1d1e1f";
	char text[200];
	struct keydir k;

	CHECK_EQ(keydir_make(&k), 0);
	CHECK_EQ(read_text(&k, h64), 0);
	snprintf(text, sizeof(text), "%s\n", h64);
	CHECK_EQ(read_text(&k, text), 0);
	snprintf(text, sizeof(text), "%s\n\n", h64);
	CHECK_EQ(read_text(&k, text), -EINVAL);
	snprintf(text, sizeof(text), "%s ", h64);
	CHECK_EQ(read_text(&k, text), -EINVAL);
	snprintf(text, sizeof(text), "%s00", h64);
	CHECK_EQ(read_text(&k, text), -EINVAL);
	snprintf(text, sizeof(text), "%.63s\n", h64);
	CHECK_EQ(read_text(&k, text), -EINVAL);
	snprintf(text, sizeof(text), "%.63sg", h64);
	CHECK_EQ(read_text(&k, text), -EINVAL);
	CHECK_EQ(read_text(&k, ""), -EINVAL);
	CHECK_EQ(read_text(&k, "\n"), -EINVAL);
	keydir_remove(&k);
}

int main(void)
{
	RUN(test_hmac_rfc4231_case2);
	RUN(test_hkdf_rfc5869_case3);
	RUN(test_keys_derive);
	RUN(test_chunk_id);
	RUN(test_sha256);
	RUN(test_hex);
	RUN(test_memcmp_ct);
	RUN(test_random);
	RUN(test_gcm_known_answer);
	RUN(test_gcm_roundtrip);
	RUN(test_gcm_rejects);
	RUN(test_key_file_create);
	RUN(test_key_file_mode);
	RUN(test_key_file_content);
	return check_summary();
}
