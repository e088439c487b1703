package cs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestResult(t *testing.T) {
	if err := Result(1); err != nil {
		t.Fatalf("CS_OK gave %v, want nil", err)
	}
	err := fmt.Errorf("cpg join %q: %w", "g", Result(6))
	if !errors.Is(err, ErrTryAgain) {
		t.Fatalf("errors.Is(%v, ErrTryAgain) = false", err)
	}
	if errors.Is(err, ErrLibrary) {
		t.Fatalf("errors.Is(%v, ErrLibrary) = true", err)
	}
	var e Error
	if !errors.As(err, &e) || e != ErrTryAgain || !e.Temporary() {
		t.Fatalf("errors.As gave %v", e)
	}
}

// Every value corotypes.h defines has a name; numbers between them that it
// does not define (29, 31..99) read as unknown.
func TestEveryValueNamed(t *testing.T) {
	defined := []int{2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
		18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 30, 100}
	for _, v := range defined {
		e := Error(v)
		if !strings.HasPrefix(e.Name(), "CS_ERR_") {
			t.Errorf("%d has no name: %q", v, e.Name())
		}
		if !strings.Contains(e.Error(), e.Name()) {
			t.Errorf("%d: message %q lacks its name", v, e.Error())
		}
	}
	if len(names) != len(defined) || len(descriptions) != len(defined) {
		t.Errorf("names %d, descriptions %d, want %d", len(names), len(descriptions), len(defined))
	}
	if got := Error(29).Error(); !strings.Contains(got, "unknown") {
		t.Errorf("29 reads %q", got)
	}
	if ErrLibrary.Temporary() {
		t.Error("CS_ERR_LIBRARY claims to be temporary")
	}
}
