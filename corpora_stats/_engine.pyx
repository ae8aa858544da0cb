# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled counting engine: whole-word, leftmost-longest class-name matching over raw UTF-8 bytes.

One pass per document: cut it into tokens (maximal runs of Unicode letters and numbers, lower-cased as
``str.lower`` does), look each token up in a hash table of the tokens that occur in some form (unknown tokens
become one "no match" marker), then walk a trie of forms over the token ids — leftmost-longest without overlap
(``method="wordnet"``) or every occurrence of every form (``method="paper"``) — and add to per-form and
per-class counters of documents and mentions, over all forms and over unflagged ones. No Python object is made
per token or per match; counters are ``array.array("q")`` (no numpy import on the count path). See :mod:`corpora_stats.matcher` for the Python side.

Classes are Python's (``str.isalpha() or str.isnumeric()`` is ``\\p{L}|\\p{N}`` for every assigned code point);
lower case is CPython's simple mapping plus the one full-mapping exception (``İ`` → ``i`` + a combining dot,
which is not a letter, so the token ends) and the final sigma.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memchr, memcmp, memcpy, memset

from array import array


cdef extern from *:
    int ctz "__builtin_ctzll"(unsigned long long x) nogil


cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL
    int _PyUnicode_IsCaseIgnorable(uint32_t ch) nogil
    int _PyUnicode_IsCased(uint32_t ch) nogil
    bint Py_UNICODE_ISALPHA(uint32_t ch) nogil  # CPython's character tables: no Python object, no GIL needed
    bint Py_UNICODE_ISNUMERIC(uint32_t ch) nogil
    bint Py_UNICODE_ISSPACE(uint32_t ch) nogil
    uint32_t Py_UNICODE_TOLOWER(uint32_t ch) nogil


cdef uint64_t EMPTY_EDGE = 0xFFFFFFFFFFFFFFFFULL
cdef enum:
    MAX_TOKEN_BYTES = 1024  # the longest form token the engine can match (class names and aliases stay far below)
    LARGE_STRING_ID = 34  # pyarrow.lib.Type_LARGE_STRING
    LARGE_BINARY_ID = 35  # pyarrow.lib.Type_LARGE_BINARY
    FILTER_WORDS = 4096

cdef uint8_t ASCII_WORD[128]
cdef uint8_t ASCII_LOWER[128]
cdef uint8_t ASCII_SPACE[128]
cdef uint8_t BYTE_KIND[256]  # 0: ASCII separator, 1: ASCII letter or digit, 2: part of a non-ASCII character
for _c in range(256):
    BYTE_KIND[_c] = 2 if _c >= 128 else 1 if chr(_c).isalnum() else 0
for _c in range(128):
    ASCII_WORD[_c] = 1 if chr(_c).isalnum() else 0
    ASCII_LOWER[_c] = ord(chr(_c).lower())
    ASCII_SPACE[_c] = 1 if chr(_c).isspace() else 0


cdef inline uint64_t mix64(uint64_t h) noexcept nogil:
    h ^= h >> 33
    h *= 0xC4CEB9FE1A85EC53ULL
    return h ^ (h >> 33)


cdef inline uint64_t hash_bytes(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """A fast 64-bit hash of a token whose high bits are well mixed (the filter and the table use them). Every
    byte is OR-ed with 0x20 first, which leaves a lower-case ASCII letter or digit as it is, so an ASCII token can be
    hashed in place before lower-casing. A token under 8 bytes is one multiply of its (zero-padded) bytes."""
    cdef uint64_t h, w
    if n < 8:
        w = 0
        memcpy(&w, p, n)
        return (w | (0x2020202020202020ULL >> (8 * (8 - n)))) * 0x9E3779B97F4A7C15ULL
    h = 0x9E3779B97F4A7C15ULL ^ <uint64_t>n
    while n >= 8:
        memcpy(&w, p, 8)
        h = (h ^ (w | 0x2020202020202020ULL)) * 0xFF51AFD7ED558CCDULL
        h ^= h >> 32
        p += 8
        n -= 8
    if n > 0:
        w = 0
        memcpy(&w, p, n)
        h = (h ^ (w | (0x2020202020202020ULL >> (8 * (8 - n))))) * 0xFF51AFD7ED558CCDULL
    return mix64(h)


cdef inline uint64_t hash_short(const uint8_t* p, Py_ssize_t n) noexcept nogil:
    """:func:`hash_bytes` of a token of 1 to 7 bytes when 8 bytes can be read at ``p``: one load, one multiply."""
    cdef uint64_t w, mask = (1ULL << (8 * n)) - 1
    memcpy(&w, p, 8)
    return ((w | 0x2020202020202020ULL) & mask) * 0x9E3779B97F4A7C15ULL


cdef inline uint64_t hash_doc(const uint8_t* p, Py_ssize_t n, uint64_t seed) noexcept nogil:
    """A seeded 64-bit hash of a document's bytes (its snippet priority: the same text, the same priority)."""
    cdef uint64_t h = seed ^ (<uint64_t>n * 0x9E3779B97F4A7C15ULL)
    cdef uint64_t w
    while n >= 8:
        memcpy(&w, p, 8)
        h = mix64((h ^ w) * 0xFF51AFD7ED558CCDULL)
        p += 8
        n -= 8
    if n > 0:
        w = 0
        memcpy(&w, p, n)
        h = mix64((h ^ w) * 0xFF51AFD7ED558CCDULL)
    return h


cdef inline uint64_t word_lanes(uint64_t w) noexcept nogil:
    """The high bit of each byte of ``w`` that is an ASCII letter or digit (SWAR: no branch per byte)."""
    cdef uint64_t ones7 = 0x7F7F7F7F7F7F7F7FULL, high = 0x8080808080808080ULL
    cdef uint64_t low = w | 0x2020202020202020ULL, x7, d7
    x7 = low & ones7
    d7 = w & ones7
    letters = (((0x0101010101010101ULL * (127 + 0x7B)) - x7) & ~low & (x7 + 0x0101010101010101ULL * (127 - 0x60)))
    digits = (((0x0101010101010101ULL * (127 + 0x3A)) - d7) & ~w & (d7 + 0x0101010101010101ULL * (127 - 0x2F)))
    return (letters | digits) & high & ~w


cdef inline Py_ssize_t ascii_run_end(const uint8_t* s, Py_ssize_t i, Py_ssize_t readable) noexcept nogil:
    """The end of the run of ASCII letters and digits at ``s[i]``: eight bytes at a time while eight can be read,
    then byte by byte (a run stops at ``s[n]`` at the latest, see :meth:`Scanner._next_token`)."""
    cdef uint64_t w, stop
    while i + 8 <= readable:
        memcpy(&w, s + i, 8)
        stop = ~word_lanes(w) & 0x8080808080808080ULL
        if stop:
            return i + (ctz(stop) >> 3)
        i += 8
    while BYTE_KIND[s[i]] == 1:
        i += 1
    return i


cdef inline int decode(const uint8_t* s, Py_ssize_t i, Py_ssize_t n, uint32_t* cp) noexcept nogil:
    """The code point at ``s[i]`` (valid UTF-8 assumed; a stray byte reads as U+FFFD) → its length in bytes."""
    cdef uint8_t c = s[i]
    if c < 0x80:
        cp[0] = c
        return 1
    if c >= 0xC2 and c < 0xE0 and i + 1 < n:
        cp[0] = ((c & 0x1F) << 6) | (s[i + 1] & 0x3F)
        return 2
    if c >= 0xE0 and c < 0xF0 and i + 2 < n:
        cp[0] = ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)
        return 3
    if c >= 0xF0 and c < 0xF5 and i + 3 < n:
        cp[0] = ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F)
        return 4
    cp[0] = 0xFFFD
    return 1


cdef inline int encode(uint32_t cp, uint8_t* out) noexcept nogil:
    if cp < 0x80:
        out[0] = <uint8_t>cp
        return 1
    if cp < 0x800:
        out[0] = <uint8_t>(0xC0 | (cp >> 6))
        out[1] = <uint8_t>(0x80 | (cp & 0x3F))
        return 2
    if cp < 0x10000:
        out[0] = <uint8_t>(0xE0 | (cp >> 12))
        out[1] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
        out[2] = <uint8_t>(0x80 | (cp & 0x3F))
        return 3
    out[0] = <uint8_t>(0xF0 | (cp >> 18))
    out[1] = <uint8_t>(0x80 | ((cp >> 12) & 0x3F))
    out[2] = <uint8_t>(0x80 | ((cp >> 6) & 0x3F))
    out[3] = <uint8_t>(0x80 | (cp & 0x3F))
    return 4


cdef inline bint is_word(uint32_t cp) noexcept nogil:
    if cp < 0x80:
        return ASCII_WORD[cp]
    return Py_UNICODE_ISALPHA(cp) or Py_UNICODE_ISNUMERIC(cp)


cdef bint final_sigma(const uint8_t* s, Py_ssize_t n, Py_ssize_t i, int step) noexcept nogil:
    """Whether the capital sigma at ``s[i]`` lowers to the final sigma, by ``str.lower``'s rule: a cased letter
    comes before it and none after it (case-ignorable characters such as apostrophes are skipped)."""
    cdef Py_ssize_t j = i
    cdef uint32_t cp = 0
    cdef bint found = False
    while j > 0:
        j -= 1
        while j > 0 and (s[j] & 0xC0) == 0x80:
            j -= 1
        decode(s, j, n, &cp)
        if not _PyUnicode_IsCaseIgnorable(cp):
            found = True
            break
    if not (found and _PyUnicode_IsCased(cp)):
        return False
    j = i + step
    while j < n:
        j += decode(s, j, n, &cp)
        if not _PyUnicode_IsCaseIgnorable(cp):
            return not _PyUnicode_IsCased(cp)
    return True


cdef bint valid_utf8(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """Whether ``s[:n]`` is UTF-8 as Python's strict decoder accepts it (no overlongs, surrogates, > U+10FFFF)."""
    cdef Py_ssize_t i = 0
    cdef uint64_t word
    cdef uint8_t c, c1
    while i < n:
        while i + 8 <= n:
            memcpy(&word, s + i, 8)
            if word & 0x8080808080808080ULL:
                break
            i += 8
        if i >= n:
            break
        c = s[i]
        if c < 0x80:
            i += 1
        elif c < 0xC2:
            return False
        elif c < 0xE0:
            if i + 1 >= n or (s[i + 1] & 0xC0) != 0x80:
                return False
            i += 2
        elif c < 0xF0:
            if i + 2 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80:
                return False
            if (c == 0xE0 and c1 < 0xA0) or (c == 0xED and c1 >= 0xA0):
                return False
            i += 3
        elif c < 0xF5:
            if i + 3 >= n:
                return False
            c1 = s[i + 1]
            if (c1 & 0xC0) != 0x80 or (s[i + 2] & 0xC0) != 0x80 or (s[i + 3] & 0xC0) != 0x80:
                return False
            if (c == 0xF0 and c1 < 0x90) or (c == 0xF4 and c1 >= 0x90):
                return False
            i += 4
        else:
            return False
    return True


cdef bint is_blank(const uint8_t* s, Py_ssize_t n) noexcept nogil:
    """Whether the (valid UTF-8) text is empty or only whitespace, as ``str.isspace`` says."""
    cdef Py_ssize_t i = 0
    cdef uint32_t cp
    while i < n:
        if s[i] < 0x80:
            if not ASCII_SPACE[s[i]]:
                return False
            i += 1
        else:
            i += decode(s, i, n, &cp)
            if not Py_UNICODE_ISSPACE(cp):
                return False
    return True


def valid_line(bytes data) -> bool:
    """Whether ``data`` is strict UTF-8 (the engine's own check, exposed for tests)."""
    return valid_utf8(<const uint8_t*><const char*>data, len(data))


def zeros(Py_ssize_t n, long long value=0, str code="q"):
    """An ``array.array`` of ``n`` times ``value`` (int64, or int32 with ``code="i"``)."""
    return array(code, [value]) * n


cdef enum:
    LINE_KEPT = 0
    LINE_TOO_LONG = 1
    LINE_NOT_UTF8 = 2
    LINE_EMPTY = 3


cdef inline int line_at(const uint8_t* s, Py_ssize_t n, Py_ssize_t a, int64_t max_doc_bytes, bint all_valid,
                        Py_ssize_t* end, Py_ssize_t* length) noexcept nogil:
    """The readers' line rules, once: the line starting at ``s[a]`` ends at ``end[0]`` (its newline, or ``n``); its
    ``length[0]`` leaves out a final ``\\r``; → LINE_KEPT, or why it is skipped (over ``max_doc_bytes``, not UTF-8
    — unless the whole block is known valid, ``all_valid`` — or empty / only whitespace)."""
    cdef const uint8_t* nl = <const uint8_t*>memchr(s + a, 10, n - a)
    cdef Py_ssize_t b = (nl - s) if nl != NULL else n
    cdef Py_ssize_t m = b - a
    if m > 0 and s[b - 1] == 13:
        m -= 1
    end[0] = b
    length[0] = m
    if m > max_doc_bytes:
        return LINE_TOO_LONG
    if not all_valid and not valid_utf8(s + a, m):
        return LINE_NOT_UTF8
    if is_blank(s + a, m):
        return LINE_EMPTY
    return LINE_KEPT


@cython.final
cdef class FormIndex:
    """The forms to find, compiled: a hash table of their tokens, a trie over token ids, form → (class, flagged)."""

    cdef readonly int num_patterns, num_classes, num_tokens
    cdef uint64_t* tok_hash
    cdef int32_t* tok_id
    cdef int32_t* tok_off
    cdef int32_t* tok_len
    cdef uint8_t* pool
    cdef uint64_t tok_mask
    cdef uint64_t filter[FILTER_WORDS]  # one bit per hash prefix of a form token: most text tokens stop here
    cdef uint64_t start_filter[FILTER_WORDS]  # the same for the first tokens of forms
    cdef list hashes  # token id → hash
    cdef int max_tok_len
    cdef int32_t* root_child
    cdef uint64_t* edge_key
    cdef int32_t* edge_child
    cdef uint64_t edge_mask
    cdef int32_t* node_pat
    cdef int32_t* pair_start
    cdef int32_t* pair_cls
    cdef uint8_t* pair_flag

    def __cinit__(self):
        self.tok_hash = NULL
        self.tok_id = NULL
        self.tok_off = NULL
        self.tok_len = NULL
        self.pool = NULL
        self.root_child = NULL
        self.edge_key = NULL
        self.edge_child = NULL
        self.node_pat = NULL
        self.pair_start = NULL
        self.pair_cls = NULL
        self.pair_flag = NULL

    def __init__(self, list patterns, pairs, int num_classes):
        """``patterns``: normalised form texts (tokens joined by one space), pattern id = position;
        ``pairs``: ``(pattern id, class index, flagged)`` triples."""
        cdef dict token_ids = {}
        cdef list token_list = []
        cdef list seqs = []
        cdef Py_ssize_t i, j
        self.num_patterns = len(patterns)
        self.num_classes = num_classes
        for text in patterns:
            seq = []
            for tok in text.split():
                b = tok.encode("utf-8")
                if b not in token_ids:
                    token_ids[b] = len(token_list)
                    token_list.append(b)
                seq.append(token_ids[b])
            seqs.append(seq)
        self._build_tokens(token_list)
        self._build_trie(seqs)
        self._build_pairs(pairs)

    cdef void _build_tokens(self, list token_list) except *:
        cdef Py_ssize_t n = len(token_list), size = 16, total = 0, i, k
        cdef uint64_t h, slot
        cdef bytes b
        cdef const uint8_t* p
        while size < 4 * n:
            size *= 2
        self.num_tokens = <int>n
        self.tok_mask = size - 1
        self.tok_hash = <uint64_t*>malloc(size * sizeof(uint64_t))
        self.tok_id = <int32_t*>malloc(size * sizeof(int32_t))
        self.tok_off = <int32_t*>malloc(size * sizeof(int32_t))
        self.tok_len = <int32_t*>malloc(size * sizeof(int32_t))
        for b in token_list:
            total += len(b)
        self.pool = <uint8_t*>malloc(total + 1)
        if not (self.tok_hash and self.tok_id and self.tok_off and self.tok_len and self.pool):
            raise MemoryError()
        for k in range(size):
            self.tok_id[k] = -1
        memset(self.filter, 0, sizeof(self.filter))
        self.hashes = []
        self.max_tok_len = 0
        total = 0
        for i in range(n):
            b = token_list[i]
            p = <const uint8_t*><const char*>b
            h = hash_bytes(p, len(b))
            self.filter[(h >> 52) & (FILTER_WORDS - 1)] |= 1ULL << ((h >> 46) & 63)
            self.hashes.append(h)
            memcpy(self.pool + total, p, len(b))
            slot = (h >> 24) & self.tok_mask
            while self.tok_id[slot] >= 0:
                slot = (slot + 1) & self.tok_mask
            self.tok_hash[slot] = h
            self.tok_id[slot] = <int32_t>i
            self.tok_off[slot] = <int32_t>total
            self.tok_len[slot] = <int32_t>len(b)
            total += len(b)
            if len(b) > self.max_tok_len:
                self.max_tok_len = <int>len(b)
        if self.max_tok_len > MAX_TOKEN_BYTES:
            self.max_tok_len = MAX_TOKEN_BYTES  # a form token longer than this is never matched

    cdef void _build_trie(self, list seqs) except *:
        cdef Py_ssize_t nodes = 1, edges = 0, size = 16, node, child, pid
        cdef uint64_t h
        cdef dict children = {}
        cdef list pats = [-1]
        for pid in range(len(seqs)):
            node = 0
            for t in seqs[pid]:
                child = children.get((node, t), -1)
                if child < 0:
                    child = nodes
                    children[(node, t)] = child
                    nodes += 1
                    pats.append(-1)
                node = child
            if node and pats[node] < 0:
                pats[node] = pid
        while size < 2 * len(children):
            size *= 2
        self.edge_mask = size - 1
        self.edge_key = <uint64_t*>malloc(size * sizeof(uint64_t))
        self.edge_child = <int32_t*>malloc(size * sizeof(int32_t))
        self.node_pat = <int32_t*>malloc(nodes * sizeof(int32_t))
        self.root_child = <int32_t*>malloc((self.num_tokens + 1) * sizeof(int32_t))
        if not (self.edge_key and self.edge_child and self.node_pat and self.root_child):
            raise MemoryError()
        for i in range(size):
            self.edge_key[i] = EMPTY_EDGE
        for i in range(self.num_tokens + 1):
            self.root_child[i] = -1
        for i in range(nodes):
            self.node_pat[i] = pats[i]
        memset(self.start_filter, 0, sizeof(self.start_filter))
        for (node, t), child in children.items():
            if node == 0:
                self.root_child[t] = <int32_t>child
                h = self.hashes[t]
                self.start_filter[(h >> 52) & (FILTER_WORDS - 1)] |= 1ULL << ((h >> 46) & 63)
            else:
                self._set_edge(node, t, child)

    cdef inline uint64_t _edge_slot(self, uint64_t key) noexcept nogil:
        return ((key * 0x9E3779B97F4A7C15ULL) >> 17) & self.edge_mask

    cdef void _set_edge(self, Py_ssize_t node, Py_ssize_t tok, Py_ssize_t child) noexcept:
        cdef uint64_t key = (<uint64_t>node << 32) | <uint64_t>tok
        cdef uint64_t slot = self._edge_slot(key)
        while self.edge_key[slot] != EMPTY_EDGE:
            slot = (slot + 1) & self.edge_mask
        self.edge_key[slot] = key
        self.edge_child[slot] = <int32_t>child

    cdef inline int32_t child_of(self, int32_t node, int32_t tok) noexcept nogil:
        cdef uint64_t key = (<uint64_t>node << 32) | <uint64_t>tok
        cdef uint64_t slot = self._edge_slot(key)
        while True:
            if self.edge_key[slot] == key:
                return self.edge_child[slot]
            if self.edge_key[slot] == EMPTY_EDGE:
                return -1
            slot = (slot + 1) & self.edge_mask

    cdef void _build_pairs(self, pairs) except *:
        cdef Py_ssize_t n, i, p
        by_pat = [[] for _ in range(self.num_patterns)]
        for p, c, flagged in pairs:
            by_pat[p].append((c, flagged))
        n = sum(len(x) for x in by_pat)
        self.pair_start = <int32_t*>malloc((self.num_patterns + 1) * sizeof(int32_t))
        self.pair_cls = <int32_t*>malloc((n + 1) * sizeof(int32_t))
        self.pair_flag = <uint8_t*>malloc(n + 1)
        if not (self.pair_start and self.pair_cls and self.pair_flag):
            raise MemoryError()
        i = 0
        for p in range(self.num_patterns):
            self.pair_start[p] = <int32_t>i
            for c, flagged in by_pat[p]:
                self.pair_cls[i] = <int32_t>c
                self.pair_flag[i] = 1 if flagged else 0
                i += 1
        self.pair_start[self.num_patterns] = <int32_t>i

    cdef inline bint maybe_token(self, uint64_t h) noexcept nogil:
        return (self.filter[(h >> 52) & (FILTER_WORDS - 1)] >> ((h >> 46) & 63)) & 1

    cdef inline bint maybe_start(self, uint64_t h) noexcept nogil:
        return (self.start_filter[(h >> 52) & (FILTER_WORDS - 1)] >> ((h >> 46) & 63)) & 1

    cdef inline int32_t ascii_token_id(self, const uint8_t* s, Py_ssize_t start, Py_ssize_t end, Py_ssize_t readable,
                                       bint starts_only) noexcept nogil:
        """The id of the ASCII token ``s[start:end]`` (-1: not a form token; with ``starts_only``, not the first
        token of a form), hashed and compared in place, lower-cased on the fly."""
        cdef int blen = <int>(end - start), k
        cdef uint64_t h, slot
        cdef const uint8_t* want
        if blen > self.max_tok_len:
            return -1
        h = hash_short(s + start, blen) if blen < 8 and start + 8 <= readable else hash_bytes(s + start, blen)
        if not (self.maybe_start(h) if starts_only else self.maybe_token(h)):
            return -1
        slot = (h >> 24) & self.tok_mask
        while self.tok_id[slot] >= 0:
            if self.tok_hash[slot] == h and self.tok_len[slot] == blen:
                want = self.pool + self.tok_off[slot]
                k = 0
                while k < blen and want[k] == ASCII_LOWER[s[start + k]]:
                    k += 1
                if k == blen:
                    if starts_only and self.root_child[self.tok_id[slot]] < 0:
                        return -1
                    return self.tok_id[slot]
            slot = (slot + 1) & self.tok_mask
        return -1

    cdef inline int32_t token_id(self, const uint8_t* buf, int length, uint64_t h) noexcept nogil:
        cdef uint64_t slot = (h >> 24) & self.tok_mask
        if not self.maybe_token(h):
            return -1
        while self.tok_id[slot] >= 0:
            if (self.tok_hash[slot] == h and self.tok_len[slot] == length
                    and memcmp(self.pool + self.tok_off[slot], buf, length) == 0):
                return self.tok_id[slot]
            slot = (slot + 1) & self.tok_mask
        return -1

    def __dealloc__(self):
        free(self.tok_hash)
        free(self.tok_id)
        free(self.tok_off)
        free(self.tok_len)
        free(self.pool)
        free(self.root_child)
        free(self.edge_key)
        free(self.edge_child)
        free(self.node_pat)
        free(self.pair_start)
        free(self.pair_cls)
        free(self.pair_flag)


@cython.final
cdef class Scanner:
    """Counts over the documents of one unit of work (a file, or a byte range of one) with a :class:`FormIndex`.

    Counters (``array.array("q")``): ``pattern_docs``, ``pattern_mentions``, ``class_docs_all``,
    ``class_mentions_all``, ``class_docs_clean``, ``class_mentions_clean``; ``documents`` and ``bytes`` of the
    documents counted; ``too_long``, ``non_utf8``, ``empty``: lines skipped by :meth:`count_lines`.
    Snippet candidates: per class the ``snippets`` documents with the highest seeded priority (:meth:`picks`).
    """

    cdef FormIndex index
    cdef int32_t* root_child  # the index's arrays, read without going through it
    cdef int32_t* node_pat
    cdef int32_t* pair_start
    cdef int32_t* pair_cls
    cdef uint8_t* pair_flag
    cdef readonly bint overlapping
    cdef readonly int64_t documents, bytes, too_long, non_utf8, empty, no_text
    cdef public object pattern_docs, pattern_mentions, class_docs_all, class_mentions_all
    cdef public object class_docs_clean, class_mentions_clean
    cdef int64_t[::1] pdocs, pment, cdocs_all, cment_all, cdocs_clean, cment_clean
    cdef int64_t[::1] pat_last, cls_last_all, cls_last_clean
    cdef int k
    cdef uint64_t mix
    cdef int64_t[::1] snip_prio, snip_key, snip_ord
    cdef int32_t[::1] snip_pat, snip_fill, snip_slot
    cdef int64_t doc_key, doc_prio
    cdef bint doc_prio_set
    cdef const uint8_t* doc_ptr
    cdef Py_ssize_t doc_len
    cdef bint recording
    cdef list rec_doc, rec_pat

    def __init__(self, FormIndex index, bint overlapping, int snippets=0, uint64_t seed=0):
        cdef int np_ = index.num_patterns, nc = index.num_classes
        self.index = index
        self.root_child, self.node_pat = index.root_child, index.node_pat
        self.pair_start, self.pair_cls, self.pair_flag = index.pair_start, index.pair_cls, index.pair_flag
        self.overlapping = overlapping
        self.pattern_docs = zeros(np_)
        self.pattern_mentions = zeros(np_)
        self.class_docs_all = zeros(nc)
        self.class_mentions_all = zeros(nc)
        self.class_docs_clean = zeros(nc)
        self.class_mentions_clean = zeros(nc)
        self.pdocs, self.pment = self.pattern_docs, self.pattern_mentions
        self.cdocs_all, self.cment_all = self.class_docs_all, self.class_mentions_all
        self.cdocs_clean, self.cment_clean = self.class_docs_clean, self.class_mentions_clean
        self.pat_last = zeros(np_, -1)
        self.cls_last_all = zeros(nc, -1)
        self.cls_last_clean = zeros(nc, -1)
        self.k = snippets
        self.mix = seed
        self.snip_prio = zeros(max(nc * snippets, 1))
        self.snip_key = zeros(max(nc * snippets, 1))
        self.snip_ord = zeros(max(nc * snippets, 1))
        self.snip_pat = zeros(max(nc * snippets, 1), 0, "i")
        self.snip_fill = zeros(nc, 0, "i")
        self.snip_slot = zeros(nc, -1, "i")
        self.recording = False

    cdef Py_ssize_t _next_token(self, const uint8_t* s, Py_ssize_t n, Py_ssize_t readable, Py_ssize_t i,
                                bint starts_only, int32_t* tid) noexcept nogil:
        """Find the next token at or after ``s[i]``; → the index after it, with its id in ``tid`` (-1: not a form
        token — with ``starts_only``, not the first token of a form; -2: no token left).

        ``s[n]`` must be readable and not a letter or digit (a newline, a carriage return or the NUL after a bytes or
        str buffer); ``readable`` bytes from ``s`` can be read (for whole-word loads)."""
        cdef Py_ssize_t start
        cdef uint32_t cp
        cdef int step, blen, maxlen = self.index.max_tok_len, k
        cdef uint8_t buf[MAX_TOKEN_BYTES + 8]
        cdef bint toolong = False, cut = False
        cdef uint8_t kind
        cdef uint64_t h, w, stop
        while True:
            while i < n and BYTE_KIND[s[i]] == 0:
                i += 1
            if i >= n:
                tid[0] = -2
                return n
            kind = BYTE_KIND[s[i]]
            if kind == 1:  # an ASCII token, unless a non-ASCII letter follows (then the general path below)
                start = i
                i = ascii_run_end(s, i + 1, readable)
                if i >= n or BYTE_KIND[s[i]] == 0:
                    tid[0] = self.index.ascii_token_id(s, start, i, readable, starts_only)
                    return i
                i = start
            step = decode(s, i, n, &cp)
            if is_word(cp):
                break
            i += step
        blen = 0
        while True:  # the general path: lower-case code point by code point
            if cp < 0x80:
                cp = ASCII_LOWER[cp]
            elif cp == 0x130:  # İ lowers to "i" + U+0307 (not a letter): the token ends after the i
                cp = 0x69
                cut = True
            elif cp == 0x3A3:  # Σ at the end of a word lowers to the final sigma
                cp = 0x3C2 if final_sigma(s, n, i, step) else 0x3C3
            else:
                cp = Py_UNICODE_TOLOWER(cp)
            if not toolong:  # buf has room for maxlen + 4 bytes
                blen += encode(cp, buf + blen)
                toolong = blen > maxlen
            i += step
            if cut or i >= n:
                break
            step = decode(s, i, n, &cp)
            if not is_word(cp):
                break
        tid[0] = -1 if toolong else self.index.token_id(buf, blen, hash_bytes(buf, blen))
        if starts_only and tid[0] >= 0 and self.root_child[tid[0]] < 0:
            tid[0] = -1
        return i

    cdef int _scan_doc(self, const uint8_t* s, Py_ssize_t n, Py_ssize_t readable, int64_t key) except -1 nogil:
        """Find the forms of one document and count them (or record them, in :meth:`matches`): at each token
        that starts a form, walk the trie over the tokens that follow."""
        cdef Py_ssize_t i = 0, j, after, best_end, start
        cdef int32_t t, node, best
        self.doc_key = key
        self.doc_prio_set = False
        self.doc_ptr = s
        self.doc_len = n
        while True:
            # the common case inline: an ASCII token that is not the first token of a form
            while i < n and BYTE_KIND[s[i]] == 0:
                i += 1
            if i >= n:
                break
            if BYTE_KIND[s[i]] == 1:
                start = i
                i = ascii_run_end(s, i + 1, readable)
                if i >= n or BYTE_KIND[s[i]] == 0:
                    t = self.index.ascii_token_id(s, start, i, readable, True)
                    if t < 0:
                        continue
                else:  # a non-ASCII letter follows: the general path
                    i = self._next_token(s, n, readable, start, True, &t)
                    if t < 0:
                        continue
            else:
                i = self._next_token(s, n, readable, i, True, &t)
                if t == -2:
                    break
                if t < 0:
                    continue
            node = self.root_child[t]
            best = self.node_pat[node]
            best_end = i
            if self.overlapping and best >= 0:
                self._found(best)
            j = i
            while True:
                after = self._next_token(s, n, readable, j, False, &t)
                if t < 0:
                    break
                node = self.index.child_of(node, t)
                if node < 0:
                    break
                j = after
                if self.node_pat[node] >= 0:
                    if self.overlapping:
                        self._found(self.node_pat[node])
                    else:
                        best = self.node_pat[node]
                        best_end = j
            if not self.overlapping and best >= 0:
                self._found(best)
                i = best_end
        self.documents += 1
        return 0

    cdef int _found(self, int32_t p) except -1 nogil:
        cdef int64_t doc = self.documents
        cdef int32_t q, c
        if self.recording:
            with gil:
                self.rec_doc.append(doc)
                self.rec_pat.append(p)
            return 0
        self.pment[p] += 1
        if self.pat_last[p] != doc:
            self.pat_last[p] = doc
            self.pdocs[p] += 1
        for q in range(self.pair_start[p], self.pair_start[p + 1]):
            c = self.pair_cls[q]
            if self.cls_last_all[c] != doc:
                self.cls_last_all[c] = doc
                self.cdocs_all[c] += 1
                if self.k:
                    self._offer(c, p)
            elif self.k and self.snip_slot[c] >= 0 and p < self.snip_pat[c * self.k + self.snip_slot[c]]:
                self.snip_pat[c * self.k + self.snip_slot[c]] = p
            self.cment_all[c] += 1
            if not self.pair_flag[q]:
                self.cment_clean[c] += 1
                if self.cls_last_clean[c] != doc:
                    self.cls_last_clean[c] = doc
                    self.cdocs_clean[c] += 1
        return 0

    cdef void _offer(self, int32_t c, int32_t p) noexcept nogil:
        """The document's first match of class ``c``: keep it if its priority is among the ``k`` highest."""
        cdef int k = self.k, slot = -1, m
        cdef Py_ssize_t base = c * k
        if not self.doc_prio_set:
            self.doc_prio = <int64_t>(hash_doc(self.doc_ptr, self.doc_len, self.mix) >> 1)
            self.doc_prio_set = True
        if self.snip_fill[c] < k:
            slot = self.snip_fill[c]
            self.snip_fill[c] += 1
        else:
            slot = 0
            for m in range(1, k):
                if (self.snip_prio[base + m] < self.snip_prio[base + slot]
                        or (self.snip_prio[base + m] == self.snip_prio[base + slot]
                            and self.snip_key[base + m] < self.snip_key[base + slot])):
                    slot = m
            if (self.doc_prio < self.snip_prio[base + slot]
                    or (self.doc_prio == self.snip_prio[base + slot] and self.doc_key <= self.snip_key[base + slot])):
                slot = -1
        self.snip_slot[c] = slot
        if slot >= 0:
            self.snip_prio[base + slot] = self.doc_prio
            self.snip_key[base + slot] = self.doc_key
            self.snip_ord[base + slot] = self.documents
            self.snip_pat[base + slot] = p

    def count_lines(self, bytes data, int64_t offset, int64_t max_doc_bytes) -> None:
        """Count the lines of ``data`` (whole lines joined by ``\\n``; ``offset``: where ``data`` starts in its
        file). A final ``\\r`` is dropped; a line over ``max_doc_bytes`` is skipped ``too_long``, one that is not
        UTF-8 ``non_utf8``, an empty or whitespace-only one ``empty``. A line's key is its byte offset.
        The GIL is released meanwhile: scanners of other units can count on other threads."""
        cdef const uint8_t* s = <const uint8_t*><const char*>data
        cdef Py_ssize_t n = len(data)
        with nogil:
            self._count_lines(s, n, offset, max_doc_bytes)

    cdef int _count_lines(self, const uint8_t* s, Py_ssize_t n, int64_t offset, int64_t max_doc_bytes) except -1 nogil:
        cdef Py_ssize_t a = 0, b, m
        cdef bint all_valid = valid_utf8(s, n)  # then every line is: lines end at ASCII newlines
        cdef int verdict
        while a <= n:
            verdict = line_at(s, n, a, max_doc_bytes, all_valid, &b, &m)
            if verdict == LINE_KEPT:
                self.bytes += m
                self._scan_doc(s + a, m, n + 1 - a, offset + a)
            elif verdict == LINE_TOO_LONG:
                self.too_long += 1
            elif verdict == LINE_NOT_UTF8:
                self.non_utf8 += 1
            else:
                self.empty += 1
            a = b + 1
        return 0

    def count_arrow(self, array, int64_t first_key, int64_t max_doc_bytes) -> None:
        """Count the values of an Arrow string or binary array straight from its buffers (no Python string per
        value); the key of value ``r`` is ``first_key + r``. A null is skipped ``no_text``, a value that is not
        UTF-8 ``non_utf8``, one over ``max_doc_bytes`` ``too_long``, an empty or blank one ``empty`` — the rules
        the readers apply to Python values. The GIL is released while the values are scanned."""
        cdef object buffers = array.buffers()
        cdef bint large = array.type.id in (LARGE_STRING_ID, LARGE_BINARY_ID)
        cdef Py_ssize_t n = len(array), base = array.offset, r, i
        cdef const char[::1] valid_view, offsets_view, data_view
        cdef const uint8_t* validity = NULL
        cdef const uint8_t* data = NULL
        cdef const int32_t* off32 = NULL
        cdef const int64_t* off64 = NULL
        cdef bint failed
        if n == 0:
            return
        if buffers[0] is not None:
            valid_view = buffers[0]
            validity = <const uint8_t*>&valid_view[0]
        offsets_view = buffers[1]
        if large:
            off64 = <const int64_t*>&offsets_view[0]
        else:
            off32 = <const int32_t*>&offsets_view[0]
        if buffers[2] is not None and len(buffers[2]):
            data_view = buffers[2]
            data = <const uint8_t*>&data_view[0]
        with nogil:
            failed = self._count_arrow(validity, off32, off64, data, base, n, first_key, max_doc_bytes)
        if failed:
            raise MemoryError()

    cdef bint _count_arrow(self, const uint8_t* validity, const int32_t* off32, const int64_t* off64,
                           const uint8_t* data, Py_ssize_t base, Py_ssize_t n, int64_t first_key,
                           int64_t max_doc_bytes) noexcept nogil:
        """The loop of :meth:`count_arrow`, without the GIL; → True when memory ran out."""
        cdef Py_ssize_t r, i, cap = 0
        cdef int64_t a, b, m
        cdef uint8_t* scratch = NULL
        cdef uint8_t* grown
        for r in range(n):
            i = base + r
            if validity != NULL and not (validity[i >> 3] >> (i & 7)) & 1:
                self.no_text += 1
                continue
            a = off64[i] if off64 != NULL else off32[i]
            b = off64[i + 1] if off64 != NULL else off32[i + 1]
            m = b - a
            if m and not valid_utf8(data + a, m):
                self.non_utf8 += 1
            elif m > max_doc_bytes:
                self.too_long += 1
            elif m == 0 or is_blank(data + a, m):
                self.empty += 1
            else:
                if m + 16 > cap:  # a copy ending in NUL: the scan needs a separator after the text
                    cap = 2 * m + 64
                    grown = <uint8_t*>realloc(scratch, cap)
                    if grown == NULL:
                        free(scratch)
                        return True
                    scratch = grown
                memcpy(scratch, data + a, m)
                memset(scratch + m, 0, 16)
                self.bytes += m
                self._scan_doc(scratch, m, m + 16, first_key + r)
        free(scratch)
        return False

    def count_texts(self, list texts, keys) -> None:
        """Count documents given as Python strings (already checked by the reader); ``keys``: one int each."""
        cdef Py_ssize_t size, i
        cdef const char* p
        cdef int64_t[::1] kv = keys if isinstance(keys, array) else array("q", keys)
        if kv.shape[0] != len(texts):
            raise ValueError("one key per text")
        for i in range(len(texts)):
            p = PyUnicode_AsUTF8AndSize(texts[i], &size)
            self.bytes += size
            self._scan_doc(<const uint8_t*>p, size, size + 1, kv[i])

    def matches(self, list texts):
        """``(doc, pattern)`` of every match in ``texts`` (doc = position in the list) as two lists."""
        cdef Py_ssize_t size, i
        cdef const char* p
        cdef int64_t before = self.documents
        self.recording = True
        self.rec_doc, self.rec_pat = [], []
        try:
            for i in range(len(texts)):
                p = PyUnicode_AsUTF8AndSize(texts[i], &size)
                self._scan_doc(<const uint8_t*>p, size, size + 1, i)
        finally:
            self.recording = False
        doc = [d - before for d in self.rec_doc]
        pat = self.rec_pat
        self.rec_doc = self.rec_pat = None
        self.documents = before
        return doc, pat

    def picks(self) -> list:
        """Snippet candidates: ``(class, priority, key, ordinal, pattern)`` tuples."""
        cdef Py_ssize_t c, m, at
        out = []
        for c in range(self.index.num_classes):
            for m in range(self.snip_fill[c]):
                at = c * self.k + m
                out.append((c, self.snip_prio[at], self.snip_key[at], self.snip_ord[at], self.snip_pat[at]))
        return out


def split_lines(bytes data, int64_t offset, int64_t max_doc_bytes, wanted=None):
    """The documents of a block of lines as :meth:`Scanner.count_lines` sees them: ``(texts, keys, counts)`` with
    ``counts`` = ``{"too_long", "non_utf8", "empty"}`` skips; with ``wanted`` (a set of keys) only those lines are
    decoded and returned (the skips are still counted)."""
    cdef const uint8_t* s = <const uint8_t*><const char*>data
    cdef Py_ssize_t n = len(data), a = 0, b, m
    cdef int64_t counts[4]
    cdef int verdict
    memset(counts, 0, sizeof(counts))
    texts, keys = [], []
    while a <= n:
        verdict = line_at(s, n, a, max_doc_bytes, False, &b, &m)
        counts[verdict] += 1
        if verdict == LINE_KEPT:
            counts[LINE_KEPT] += m - 1  # the kept lines' bytes
            if wanted is None or (offset + a) in wanted:
                texts.append(data[a:a + m].decode("utf-8"))
                keys.append(offset + a)
        a = b + 1
    return texts, keys, {"too_long": counts[LINE_TOO_LONG], "non_utf8": counts[LINE_NOT_UTF8],
                         "empty": counts[LINE_EMPTY], "bytes": counts[LINE_KEPT]}
