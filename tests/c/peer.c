/* A C peer of the shm format: maps a segment made by the Rust library,
 * validates its header by the rules of shm_core::format, then reads the
 * first message of queue "q" and the posted request of mailbox "m",
 * printing what it read, one `key=value ...` line each. Read-only: it
 * changes nothing in the segment.
 *
 * Usage: peer NAME   (NAME as given to shm_open, e.g. "/shm-test-1-c")
 * Exit status: 0 on success, 2 on bad usage or an OS error, 3 when the
 * segment fails validation (the reason is printed on stderr). */
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shm_format.h"

static const unsigned char *base;
static uint32_t total;

/* A word of the segment, loaded atomically (the peer may write it). */
static uint32_t load(uint32_t offset, memory_order order) {
    return atomic_load_explicit((_Atomic uint32_t *)(base + offset), order);
}

static int fail(const char *what, uint32_t value) {
    fprintf(stderr, "invalid segment: %s (%u)\n", what, (unsigned)value);
    return 3;
}

/* Prints `n` payload bytes at `offset` as text, escaping the rest. */
static void print_bytes(uint32_t offset, uint32_t n) {
    for (uint32_t i = 0; i < n; i++) {
        unsigned char c = base[offset + i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            putchar(c);
        } else {
            printf("\\x%02x", c);
        }
    }
}

struct channel {
    uint32_t kind, offset, size, param, slot_size;
    char name[SHM_TABLE_NAME_BYTES + 1];
};

/* Reads and checks table entry `i`; `end` is where the previous area ended. */
static int read_entry(uint32_t i, uint32_t end, struct channel *c) {
    uint32_t entry = SHM_TABLE_OFFSET + i * SHM_TABLE_ENTRY_SIZE;
    c->kind = load(entry + SHM_TABLE_KIND_OFFSET, memory_order_relaxed);
    c->offset = load(entry + SHM_TABLE_OFFSET_OFFSET, memory_order_relaxed);
    c->size = load(entry + SHM_TABLE_SIZE_OFFSET, memory_order_relaxed);
    c->param = load(entry + SHM_TABLE_SLOTS_OFFSET, memory_order_relaxed);
    c->slot_size = load(entry + SHM_TABLE_SLOT_SIZE_OFFSET, memory_order_relaxed);
    for (uint32_t w = 0; w < SHM_TABLE_NAME_BYTES; w += 4) {
        uint32_t word = load(entry + SHM_TABLE_NAME_OFFSET + w, memory_order_relaxed);
        memcpy(c->name + w, &word, 4);
    }
    c->name[SHM_TABLE_NAME_BYTES] = 0;
    if (c->kind != SHM_KIND_MAILBOX && c->kind != SHM_KIND_QUEUE && c->kind != SHM_KIND_SEMAPHORE &&
        c->kind != SHM_KIND_DIRECT)
        return fail("channel kind", c->kind);
    if (c->offset % SHM_CACHE_LINE != 0 || c->offset < end || c->offset >= total)
        return fail("channel offset", c->offset);
    if ((uint64_t)c->offset + c->size > total) return fail("channel size", c->size);
    if (c->kind == SHM_KIND_QUEUE && (c->param < SHM_QUEUE_MIN_CAPACITY || c->param > SHM_QUEUE_MAX_CAPACITY ||
                                      (c->param & (c->param - 1)) != 0 || SHM_QUEUE_RING_OFFSET + c->param != c->size))
        return fail("queue capacity", c->param);
    /* A direct mailbox (format 2.2) has a mailbox's geometry. */
    if ((c->kind == SHM_KIND_MAILBOX || c->kind == SHM_KIND_DIRECT) &&
        (c->param < 1 || c->param > SHM_MAILBOX_MAX_SLOTS || c->slot_size < 1 ||
         c->slot_size > SHM_MAILBOX_MAX_SLOT_SIZE ||
         SHM_MAILBOX_SLOT_OFFSET((uint64_t)c->param, (uint64_t)c->slot_size) != c->size))
        return fail("mailbox geometry", c->param);
    return 0;
}

/* The checks of shm_core::format, "Reading a segment", but the layout hash. */
static int validate(uint64_t file_size, struct channel *channels, uint32_t *count) {
    if (file_size < SHM_HEADER_SIZE) return fail("file smaller than the header", (uint32_t)file_size);
    uint32_t state = load(SHM_HEADER_STATE_OFFSET, memory_order_acquire); /* pairs with the creator's Release */
    if (load(SHM_HEADER_MAGIC_LO_OFFSET, memory_order_relaxed) != SHM_MAGIC_LO ||
        load(SHM_HEADER_MAGIC_HI_OFFSET, memory_order_relaxed) != SHM_MAGIC_HI)
        return fail("magic", load(SHM_HEADER_MAGIC_LO_OFFSET, memory_order_relaxed));
    if (state != SHM_STATE_READY) return fail("state not READY", state);
    if (load(SHM_HEADER_ENDIAN_OFFSET, memory_order_relaxed) != SHM_ENDIAN_MARK)
        return fail("endianness mark", load(SHM_HEADER_ENDIAN_OFFSET, memory_order_relaxed));
    uint32_t version = load(SHM_HEADER_VERSION_OFFSET, memory_order_relaxed);
    if (version >> 16 != SHM_FORMAT_MAJOR) return fail("format major", version >> 16);
    total = load(SHM_HEADER_TOTAL_SIZE_OFFSET, memory_order_relaxed);
    if (total > file_size || total < SHM_AREAS_OFFSET) return fail("total_size against the file", total);
    *count = load(SHM_HEADER_CHANNEL_COUNT_OFFSET, memory_order_relaxed);
    if (*count > SHM_MAX_CHANNELS) return fail("channel_count", *count);
    uint32_t end = SHM_AREAS_OFFSET;
    for (uint32_t i = 0; i < *count; i++) {
        int bad = read_entry(i, end, &channels[i]);
        if (bad) return bad;
        end = channels[i].offset + ((channels[i].size + SHM_CACHE_LINE - 1) & ~(SHM_CACHE_LINE - 1));
    }
    printf("header version=%u.%u size=%u file=%llu channels=%u state=READY\n", (unsigned)(version >> 16),
           (unsigned)(version & 0xffffu), (unsigned)total, (unsigned long long)file_size, (unsigned)*count);
    return 0;
}

/* The oldest unreleased message of the queue at `c`. */
static int read_queue(const struct channel *c) {
    uint32_t area = c->offset, capacity = c->param;
    uint32_t head = load(area + SHM_QUEUE_HEAD_OFFSET, memory_order_acquire); /* pairs with the producer's commit */
    uint32_t tail = load(area + SHM_QUEUE_TAIL_OFFSET, memory_order_relaxed);
    if (head - tail > capacity || tail % SHM_QUEUE_FRAME_ALIGN != 0) return fail("queue positions", head - tail);
    if (head == tail) {
        printf("queue %s empty\n", c->name);
        return 0;
    }
    uint32_t at = tail & (capacity - 1);
    uint32_t len = load(area + SHM_QUEUE_RING_OFFSET + at + SHM_QUEUE_FRAME_LEN_OFFSET, memory_order_relaxed);
    if (len == SHM_QUEUE_WRAP_MARKER) {
        at = 0;
        len = load(area + SHM_QUEUE_RING_OFFSET + SHM_QUEUE_FRAME_LEN_OFFSET, memory_order_relaxed);
    }
    if (len > SHM_QUEUE_MAX_MESSAGE(capacity) || at + SHM_QUEUE_FRAME_SIZE(len) > capacity)
        return fail("frame len", len);
    printf("queue %s len=%u payload=", c->name, (unsigned)len);
    print_bytes(area + SHM_QUEUE_RING_OFFSET + at + SHM_QUEUE_FRAME_HEADER, len);
    printf(" frame=%u max_message=%u\n", (unsigned)SHM_QUEUE_FRAME_SIZE(len), (unsigned)SHM_QUEUE_MAX_MESSAGE(capacity));
    return 0;
}

/* Every slot of the mailbox (or direct mailbox) at `c` holding a posted
   request: REQUEST is `posted` in its slot states. */
static int read_mailbox(const struct channel *c, const char *what, uint32_t posted) {
    printf("%s %s slots=%u slot_size=%u stride=%u\n", what, c->name, (unsigned)c->param, (unsigned)c->slot_size,
           (unsigned)SHM_MAILBOX_SLOT_STRIDE(c->slot_size));
    for (uint32_t i = 0; i < c->param; i++) {
        uint32_t slot = c->offset + SHM_MAILBOX_SLOT_OFFSET(i, c->slot_size);
        uint32_t state = load(slot + SHM_MAILBOX_SLOT_STATE_OFFSET, memory_order_acquire); /* pairs with the post */
        if (SHM_MAILBOX_LOW_OF(state) != posted) continue;
        uint32_t len = load(slot + SHM_MAILBOX_SLOT_LEN_OFFSET, memory_order_relaxed);
        if (len > c->slot_size) return fail("slot len", len);
        printf("slot %u state=REQUEST id=%u len=%u payload=", (unsigned)i, (unsigned)SHM_MAILBOX_ID_OF(state),
               (unsigned)len);
        print_bytes(slot + SHM_MAILBOX_SLOT_PAYLOAD_OFFSET, len);
        printf("\n");
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s NAME\n", argv[0]);
        return 2;
    }
    int fd = shm_open(argv[1], O_RDONLY, 0);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        perror(argv[1]);
        return 2;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    base = map;
    struct channel channels[SHM_MAX_CHANNELS];
    uint32_t count = 0;
    int rc = validate((uint64_t)st.st_size, channels, &count);
    for (uint32_t i = 0; rc == 0 && i < count; i++) {
        if (channels[i].kind == SHM_KIND_QUEUE) rc = read_queue(&channels[i]);
        if (channels[i].kind == SHM_KIND_MAILBOX) rc = read_mailbox(&channels[i], "mailbox", SHM_SLOT_REQUEST);
        if (channels[i].kind == SHM_KIND_DIRECT) rc = read_mailbox(&channels[i], "direct", SHM_DIRECT_SLOT_REQUEST);
    }
    munmap(map, (size_t)st.st_size);
    return rc;
}
