/* vmwalk test kernel: builds random page tables from a seed, loads through them
 * and records what the MMU did, so the guest's own loads are the oracle.
 * cmdline: "[la57] [nonx] seed=<dec> n=<dec>" (boot.S reads the modes).
 * Physical layout (below 1 GiB, which every CR3 of ours identity-maps):
 *   0x100000 kernel, 0x1A0000 boot tables, 0x1F0000 stack top,
 *   0x200000 results, 0x300000.. table pool, TAG_BASE..RAM end: every 8-byte
 *   word holds TAG|its own physical address, so a load tells the frame it hit. */
typedef unsigned long long u64;
typedef unsigned int u32;

#define RES_BASE   0x200000ull
#define POOL_BASE  0x300000ull
#define POOL_MAX   256
#define TAG_BASE   0x400000ull
#define TAG        0x7A67000000000000ull
#define MAX_TESTS  2048
#define P   1ull
#define RW  2ull
#define PS  0x80ull
#define NX  (1ull << 63)
#define GIB (1ull << 30)

/* access: bit0 a load with EFLAGS.AC=0 faulted (SMAP: a user page), bit1 the store
 * faulted (CR0.WP: read-only), bits 8-15 / 16-23 their error codes; bit 63 not run. */
struct result { u64 va, value, vec, err, cr2, access; };
struct header {
	u64 magic, done, cr3, cr4, efer, maxphy, count, seed, ram_end, nxe, la57, tables, smap;
};

u64 fault_vec, fault_err, fault_cr2;
extern u64 isr_table[32];
u64 probe(u64 va), probe_store(u64 va);

static u64 rng, ram_end, addr_mask, seed, ntests = 512;
static int maxphy, la57, nxe, pool_used;
static u64 level_tables[6][POOL_MAX];
static int level_count[6];

static void outb(unsigned short port, unsigned char v) { __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
static void sputs(const char *s) { while (*s) outb(0x3f8, *s++); }
static void puthex(u64 v) {
	sputs("0x");
	for (int i = 60; i >= 0; i -= 4) outb(0x3f8, "0123456789abcdef"[(v >> i) & 15]);
}

void unexpected(u64 vec, u64 err, u64 rip) {
	sputs("UNEXPECTED vec="); puthex(vec); sputs(" err="); puthex(err); sputs(" rip="); puthex(rip); sputs("\n");
	for (;;) __asm__ volatile("cli; hlt");
}

static u64 rnd(void) { /* xorshift64*: deterministic given the seed */
	rng ^= rng >> 12; rng ^= rng << 25; rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}
static u64 below(u64 n) { return rnd() % n; }

static u64 parse_num(const char *s, const char *key, u64 dflt) {
	for (; *s; s++) {
		const char *a = s, *k = key;
		while (*k && *a == *k) a++, k++;
		if (*k) continue;
		u64 v = 0;
		while (*a >= '0' && *a <= '9') v = v * 10 + (u64)(*a++ - '0');
		return v;
	}
	return dflt;
}

static volatile u64 *alloc_table(void) {
	volatile u64 *t = (u64 *)(POOL_BASE + 4096ull * (u64)pool_used++);
	for (int i = 0; i < 512; i++) t[i] = 0;
	return t;
}

/* Random bits that the MMU must ignore or only report, never use for translation. */
static u64 noise(void) {
	u64 f = rnd() & 0x1eull;                            /* RW US PWT PCD */
	f |= rnd() & 0xe20ull;                              /* A, available 9-11 */
	f |= rnd() & 0x140ull;                              /* leaf: D, G; else ignored bits */
	if (below(3) == 0) f |= (rnd() & 0x7ffull) << 52;   /* 52-62: available / PK (PKE off) */
	if (nxe && below(3) == 0) f |= NX;
	return f;
}

/* A frame for a leaf of the given size: mostly in the tagged RAM, sometimes anywhere
 * below MAXPHYADDR (avoiding the 3-4 GiB MMIO hole, loads there have side effects). */
static u64 frame(u64 size) {
	u64 f;
	if (size == GIB) f = below(5) < 3 ? 0 : (rnd() & addr_mask & ~(GIB - 1));
	else if (below(100) < 85) f = (TAG_BASE + below(ram_end - TAG_BASE)) & ~(size - 1);
	else f = rnd() & addr_mask & ~(size - 1);
	if ((f >> 30) == 3) f ^= 1ull << 32;
	if (f < TAG_BASE && f + size <= TAG_BASE) f = TAG_BASE; /* keep leaves off our own memory */
	return f & addr_mask;
}

/* Turn a present entry into one the CPU must reject with a reserved-bit fault. */
static u64 make_reserved(u64 e, int level, int leaf) {
	if (maxphy >= 52 && nxe && level < 4 && !(leaf && level >= 2)) return e; /* no reserved bit to set */
	for (;;) {
		switch (below(4)) {
		case 0: if (maxphy < 52) return e | 1ull << (maxphy + below(52 - maxphy)); break;
		case 1: if (level >= 4) return e | PS; break;
		case 2: if (leaf && level >= 2) return e | 1ull << (13 + below(level == 2 ? 8 : 17)); break;
		case 3: if (!nxe) return e | NX; break;
		}
	}
}

/* Fill one table of `level` (5 = PML5 ... 1 = PT). Pointers lead only to tables of
 * the next level (new ones while the pool lasts, else existing ones: aliasing). */
static u64 build(int level, int depth_budget) {
	volatile u64 *t = alloc_table();
	u64 pa = (u64)t;
	level_tables[level][level_count[level]++] = pa;
	int new_children = 0, max_children = level >= 4 ? 4 : 2;
	for (int i = 0; i < 512; i++) {
		u64 r = below(100), e = 0;
		int leaf = 0;
		if (r < 30) e = 0;
		else if (r < 45) e = rnd() & ~P;                 /* not present, garbage */
		else if (level == 1 || (level <= 3 && r < 80)) {
			u64 size = 1ull << (12 + 9 * (level - 1));
			e = frame(size) | noise() | P;
			if (level > 1) e |= PS | (rnd() & 0x1000ull);     /* PAT at bit 12 */
			else e |= rnd() & 0x80ull;                     /* PAT at bit 7 */
			leaf = 1;
		} else if (level > 1) {
			u64 child;
			if (new_children < max_children && depth_budget > 0 && pool_used < POOL_MAX - 8) {
				child = build(level - 1, depth_budget - 1);
				new_children++;
			} else if (level_count[level - 1] > 0) {
				child = level_tables[level - 1][below(level_count[level - 1])];
			} else continue;
			e = child | noise() | P;
		}
		if ((e & P) && below(100) < 5) e = make_reserved(e, level, leaf);
		t[i] = e;
	}
	return pa;
}

/* A test address: descend like the MMU, preferring present entries, so that most
 * tests reach a leaf; what happens there is left to the CPU. */
static u64 pick_va(u64 root) {
	if (below(100) < 3) return rnd();                  /* almost always non-canonical */
	int levels = la57 ? 5 : 4, lvl;
	u64 table = root, va = 0, e = 0;
	for (lvl = levels; lvl >= 1; lvl--) {
		u64 *t = (u64 *)table, idx = below(512);
		for (int k = below(6) ? 24 : 0; k > 0 && !(t[idx] & P); k--) idx = below(512);
		if (lvl == levels) idx = below(40) == 0 ? 0 : (idx ? idx : 1);
		va |= idx << (12 + 9 * (lvl - 1));
		e = t[idx];
		if (!(e & P) || lvl == 1 || ((lvl == 2 || lvl == 3) && (e & PS))) break;
		table = e & 0x000ffffffffff000ull;
		if (table >= GIB || table + 4096 > ram_end) break;
	}
	if (lvl < 1) lvl = 1;
	u64 span = 1ull << (12 + 9 * (lvl - 1));
	u64 off = rnd() & (span - 1);
	if (lvl == 3 && (e & P) && !(e & 0x000fffffc0000000ull) && below(4)) off = below(ram_end);
	va = (va | off) & ~7ull;
	int top = la57 ? 56 : 47;
	if (va >> top & 1) va |= ~0ull << top;
	if (below(100) < 3) va ^= 1ull << (top + 1 + below(63 - top));  /* just non-canonical */
	return va;
}

static u64 rdmsr(u32 msr) {
	u32 lo, hi;
	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (u64)hi << 32 | lo;
}

void kmain(u32 mbi_pa) {
	const u32 *mbi = (const u32 *)(u64)mbi_pa;
	static char cmd[256];
	const char *src = (mbi[0] & 4) ? (const char *)(u64)mbi[4] : "";
	for (int i = 0; i < 255 && src[i]; i++) cmd[i] = src[i];
	ram_end = (mbi[0] & 1) ? ((u64)mbi[2] + 1024) * 1024 : 32ull << 20;
	seed = parse_num(cmd, "seed=", 1);
	ntests = parse_num(cmd, "n=", 512);
	if (ntests > MAX_TESTS) ntests = MAX_TESTS;
	rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	u64 cr4, cr3;
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	la57 = (cr4 >> 12) & 1;
	nxe = (rdmsr(0xC0000080) >> 11) & 1;
	u32 a, b, c, d;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0x80000008u), "c"(0));
	maxphy = a & 0xff;
	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7u), "c"(0));
	int smap = (b >> 20) & 1;
	if (smap) {
		cr4 |= 1ull << 21;
		__asm__ volatile("mov %0, %%cr4" ::"r"(cr4));
	}
	addr_mask = ((maxphy >= 52 ? 1ull << 52 : 1ull << maxphy) - 1) & ~0xfffull;

	struct { unsigned short lim; u64 base; } __attribute__((packed)) idtr;
	static u64 idt[64];
	for (int v = 0; v < 32; v++) {
		u64 h = isr_table[v];
		idt[2 * v] = (h & 0xffff) | (0x08ull << 16) | (0x8Eull << 40) | ((h >> 16 & 0xffff) << 48);
		idt[2 * v + 1] = h >> 32;
	}
	idtr.lim = sizeof idt - 1; idtr.base = (u64)idt;
	__asm__ volatile("lidt %0" ::"m"(idtr));

	for (u64 p = TAG_BASE; p < ram_end; p += 8) *(volatile u64 *)p = TAG | p;

	/* The random tree; then entry 0 of the top table (and below it) becomes a fixed
	 * 1 GiB identity map so this code, its stack and results stay reachable. */
	int levels = la57 ? 5 : 4;
	u64 root = build(levels, levels == 5 ? 5 : 4);
	u64 *top = (u64 *)root, *pdpt = (u64 *)level_tables[3][0];
	if (la57) {
		u64 *pml4 = (u64 *)level_tables[4][0];
		top[0] = (u64)pml4 | 0x63;
		pml4[0] = (u64)pdpt | 0x63;
	} else top[0] = (u64)pdpt | 0x63;
	pdpt[0] = 0 | 0xE3;                                 /* P RW A D PS */
	top[511 - below(8)] = root | 0x23 | (rnd() & 0xe00);  /* a self-map, as Windows keeps */

	volatile struct header *h = (struct header *)RES_BASE;
	volatile struct result *res = (struct result *)(RES_BASE + sizeof(struct header));
	for (u64 i = 0; i < ntests; i++) res[i].va = pick_va(root);

	cr3 = root | (rnd() & 0xff8);                       /* PWT/PCD and ignored bits 11:5 */
	__asm__ volatile("mov %0, %%cr3" ::"r"(cr3) : "memory");
	for (u64 i = 0; i < ntests; i++) {
		if (smap) __asm__ volatile("stac");
		u64 v = probe(res[i].va);
		res[i].value = v;
		res[i].vec = fault_vec;
		res[i].err = fault_vec == 0xff ? 0 : fault_err;
		res[i].cr2 = fault_vec == 14 ? fault_cr2 : 0;
		u64 acc = 1ull << 63;
		if (fault_vec == 0xff) {
			acc = 0;
			if (smap) {
				__asm__ volatile("clac");
				probe(res[i].va);
				if (fault_vec != 0xff) acc |= 1 | (fault_err & 0xff) << 8;
				__asm__ volatile("stac");
			}
			probe_store(res[i].va);
			if (fault_vec != 0xff) acc |= 2 | (fault_err & 0xff) << 16;
		}
		res[i].access = acc;
	}
	h->cr3 = cr3; h->cr4 = cr4; h->efer = rdmsr(0xC0000080); h->maxphy = (u64)maxphy;
	h->count = ntests; h->seed = seed; h->ram_end = ram_end; h->nxe = (u64)nxe;
	h->la57 = (u64)la57; h->tables = (u64)pool_used; h->smap = (u64)smap;
	h->magic = 0x31534552544b4d56ull;                   /* "VMKTRES1" */
	h->done = 1;
	sputs("DONE\n");
	for (;;) __asm__ volatile("cli; hlt");              /* keeps the random CR3 for gva2gpa */
}
