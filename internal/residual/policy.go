package residual

import "fmt"

// Policy is what the daemon does when Scan finds residual state.
type Policy int

const (
	// PolicyFence kills our node from the cluster, runs the self-fence
	// command and exits without joining. It is the zero value because it
	// is the default: it unblocks a cluster where every node restarted
	// with residual state and nobody could fence anybody.
	PolicyFence Policy = iota
	// PolicyKick kills our node from the cluster but runs no fence command.
	PolicyKick
	// PolicyStay keeps our node a cluster member, so it still counts for
	// quorum, but never joins the groupd group, so other nodes fence it.
	// Suits SAN fencing, where a node cannot usefully fence itself.
	PolicyStay
)

var policyNames = [...]string{PolicyFence: "fence", PolicyKick: "kick", PolicyStay: "stay"}

func (p Policy) String() string {
	if p >= 0 && int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ParsePolicy accepts the names String returns.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if s == n {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("unknown residual-state policy %q (want fence, kick or stay)", s)
}

// MarshalText lets a Policy be a flag (flag.TextVar) or a config value.
func (p Policy) MarshalText() ([]byte, error) {
	if p < 0 || int(p) >= len(policyNames) {
		return nil, fmt.Errorf("invalid residual-state policy %d", int(p))
	}
	return []byte(p.String()), nil
}

// UnmarshalText is the inverse of MarshalText.
func (p *Policy) UnmarshalText(b []byte) error {
	v, err := ParsePolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Kills says whether the policy removes our node from the cluster.
func (p Policy) Kills() bool { return p == PolicyFence || p == PolicyKick }

// RunsCommand says whether the policy runs the self-fence command.
func (p Policy) RunsCommand() bool { return p == PolicyFence }
