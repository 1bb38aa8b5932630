package api

// MeshRetryDefaults switches the default retries of every service.
//
//	spec:
//	  defaults:
//	    retry: {enabled: false}
type MeshRetryDefaults struct {
	// Enabled false turns the default retry policy off: a service without
	// a DestinationPolicy retry is retried only on connect failures and
	// resets before any response byte. Default true. The retry budget
	// still caps every retry.
	Enabled *bool `json:"enabled,omitempty"`
}

// RetryBudget caps retries to a service: over each window they may add at
// most Percent of the requests plus MinRetriesPerSecond for each second of
// the window. A retry beyond it is not made: the failed attempt is returned.
type RetryBudget struct {
	// Percent of requests that may be retried, 0..100; default 20.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Percent *int32 `json:"percent,omitempty"`
	// MinRetriesPerSecond allowed whatever the traffic, 0..100000;
	// default 10.
	MinRetriesPerSecond *int32 `json:"minRetriesPerSecond,omitempty"`
	// Window over which requests and retries are counted, 1s..60s;
	// default "10s".
	Window string `json:"window,omitempty"`
}
