package ca

import "time"

// issuedRecord is the last certificate issued to one SPIFFE ID.
type issuedRecord struct {
	root     string
	notAfter time.Time
}

// recordIssued notes that id got a certificate from the root with serial
// root, valid until notAfter. Expired records are pruned as the map grows.
func (c *CA) recordIssued(id, root string, notAfter time.Time) {
	c.issuedMu.Lock()
	defer c.issuedMu.Unlock()
	if c.issued == nil {
		c.issued = make(map[string]issuedRecord)
	}
	if len(c.issued)%256 == 255 {
		now := c.now()
		for k, r := range c.issued {
			if now.After(r.notAfter) {
				delete(c.issued, k)
			}
		}
	}
	c.issued[id] = issuedRecord{root: root, notAfter: notAfter}
}

// IssuedRoot is the serial (hex) of the root that signed the last
// unexpired certificate issued to the SPIFFE ID id since the control plane
// started, or "" if there is none. Replicas sharing an ID share the answer.
func (c *CA) IssuedRoot(id string) string {
	c.issuedMu.Lock()
	defer c.issuedMu.Unlock()
	r, ok := c.issued[id]
	if !ok || c.now().After(r.notAfter) {
		return ""
	}
	return r.root
}

// IssuedNotAfter is when the last unexpired certificate issued to the
// SPIFFE ID id since the control plane started expires, or the zero time.
func (c *CA) IssuedNotAfter(id string) time.Time {
	c.issuedMu.Lock()
	defer c.issuedMu.Unlock()
	r, ok := c.issued[id]
	if !ok || c.now().After(r.notAfter) {
		return time.Time{}
	}
	return r.notAfter
}
