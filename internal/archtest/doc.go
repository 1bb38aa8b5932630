// Package archtest holds tests of the code base's shape: dependency direction
// between the control plane and the proxy, and package documentation.
package archtest
