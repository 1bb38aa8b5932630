package xdsclient

// Updated returns a channel closed at the next configuration update (for
// watchers of settings such as the tracing endpoint; a new channel after
// each update).
func (c *Client) Updated() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.updated
}
