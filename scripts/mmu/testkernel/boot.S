/* Multiboot entry (32-bit) -> long mode, 4-level or 5-level (cmdline has "la57"),
 * EFER.NXE unless it has "nonx". Identity-maps the low 1 GiB
 * with 2 MiB pages, then calls kmain(mbi). Also the exception stubs and the probe. */
#define BOOT_PML5 0x1A0000
#define BOOT_PML4 0x1A1000
#define BOOT_PDPT 0x1A2000
#define BOOT_PD   0x1A3000
#define STACK_TOP 0x1F0000

	.section .multiboot, "a"
	.align 4
	.long 0x1BADB002, 0x00000003, -(0x1BADB002 + 0x00000003)

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	mov $STACK_TOP, %esp
	mov %ebx, %ebp                  /* multiboot info */
	mov $BOOT_PML5, %edi            /* zero the four boot tables */
	xor %eax, %eax
	mov $(4 * 1024), %ecx
	rep stosl
	mov $BOOT_PD, %edi              /* PD: 512 x 2 MiB identity, P|RW|PS */
	mov $0x83, %eax
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	cmp $(BOOT_PD + 4096), %edi
	jne 1b
	movl $(BOOT_PD + 3), BOOT_PDPT
	movl $(BOOT_PDPT + 3), BOOT_PML4
	movl $(BOOT_PML4 + 3), BOOT_PML5

	xor %esi, %esi                  /* esi bit0 = LA57, bit1 = no NXE */
	testl $4, (%ebp)                /* mbi has a cmdline? (QEMU prefixes the file name) */
	jz 2f
	mov 16(%ebp), %ebx
3:	cmpb $0, (%ebx)
	je 2f
	cmpl $0x3735616c, (%ebx)        /* "la57" anywhere */
	jne 4f
	or $1, %esi
4:	cmpl $0x786e6f6e, (%ebx)        /* "nonx" anywhere */
	jne 5f
	or $2, %esi
5:	inc %ebx
	jmp 3b
2:	mov $0x620, %eax                /* PAE | OSFXSR | OSXMMEXCPT */
	mov $BOOT_PML4, %ebx
	test $1, %esi
	jz 6f
	or $0x1000, %eax                /* CR4.LA57 must be set before paging is on */
	mov $BOOT_PML5, %ebx
6:	mov %eax, %cr4
	mov %ebx, %cr3
	mov $0xC0000080, %ecx
	rdmsr
	or $0x100, %eax                 /* LME */
	test $2, %esi
	jnz 7f
	or $0x800, %eax                 /* NXE */
7:	wrmsr
	mov %cr0, %eax
	or $0x80010001, %eax            /* PG | WP | PE */
	mov %eax, %cr0
	lgdt gdt_ptr
	ljmp $0x08, $long_entry

	.code64
long_entry:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $STACK_TOP, %rsp
	mov %ebp, %edi
	call kmain
8:	cli
	hlt
	jmp 8b

	.align 16
gdt:	.quad 0, 0x00AF9A000000FFFF, 0x00CF92000000FFFF
gdt_ptr:
	.word gdt_ptr - gdt - 1
	.long gdt

/* Exception stubs: push a dummy error code where the CPU pushes none, then the vector. */
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
isr\n:	.if !((\n == 8) || (\n >= 10 && \n <= 14) || (\n == 17) || (\n == 21) || (\n == 29) || (\n == 30))
	push $0
	.endif
	push $\n
	jmp isr_common
	.endr
	.section .data
	.globl isr_table
isr_table:
	.irp n, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.quad isr\n
	.endr

	.section .text
/* A fault on the probe's load is recorded and resumes at probe_fault; any other
 * exception is a bug of ours: report it and stop. */
isr_common:                             /* 0:vec 8:err 16:rip */
	push %rax
	mov 24(%rsp), %rax
	cmp $probe_insn, %rax
	je 9f
	cmp $store_insn, %rax
	jne 7f
9:	mov 8(%rsp), %rax
	mov %rax, fault_vec
	mov 16(%rsp), %rax
	mov %rax, fault_err
	mov %cr2, %rax
	mov %rax, fault_cr2
	movq $probe_fault, 24(%rsp)
	pop %rax
	add $16, %rsp
	iretq
7:	mov 8(%rsp), %rdi
	mov 16(%rsp), %rsi
	mov 24(%rsp), %rdx
	and $-16, %rsp
	call unexpected
	jmp 8b

/* u64 probe(u64 va): one 8-byte load; fault_vec stays 0xff unless it faulted.
 * probe_store: load and store back at once (nothing of ours runs in between, so
 * even a store into our own stack or tables leaves them as they were). */
	.globl probe, probe_store
probe:
	movq $0xff, fault_vec
probe_insn:
	mov (%rdi), %rax
	ret
probe_store:
	movq $0xff, fault_vec
	mov (%rdi), %rax
store_insn:
	mov %rax, (%rdi)
	ret
probe_fault:
	movabs $0xdeaddeaddeaddead, %rax
	ret

	.section .note.GNU-stack, "", @progbits
