"""The sandbox API: a service over the one workflow, and the HTTP app `asbx serve` runs."""
