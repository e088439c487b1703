package cman

import (
	"debug/elf"
	"encoding/binary"
	"os"
	"runtime"
	"testing"
)

// KillNode's answer is only told apart from libcfg's unset reply buffer
// when nothing runs on the stack between cman_kill_node's filling it and
// corosync_cfg_kill_node's frame. A call through the PLT would, on the
// first kill of a process: the dynamic linker's lazy resolver, which saves
// registers there. So the function must be reached through an address
// filled in at load time, never through a lazily bound PLT slot.
func TestKillNodeNotLazilyBound(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("reads amd64 relocations")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range syms {
		found = found || s.Name == "corosync_cfg_kill_node"
	}
	if !found {
		t.Fatal("corosync_cfg_kill_node is not among the test binary's dynamic symbols")
	}
	plt := f.Section(".rela.plt")
	if plt == nil {
		return // no lazily bound calls at all
	}
	data, err := plt.Data()
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off+24 <= len(data); off += 24 { // Elf64_Rela
		info := binary.LittleEndian.Uint64(data[off+8:])
		if i := int(info >> 32); i > 0 && i <= len(syms) && syms[i-1].Name == "corosync_cfg_kill_node" &&
			elf.R_X86_64(info&0xffffffff) == elf.R_X86_64_JMP_SLOT {
			t.Fatal("corosync_cfg_kill_node is called through a lazily bound PLT slot")
		}
	}
}
