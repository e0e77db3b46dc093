"""Scale-out delivery: predict and video as Ray Data jobs across a cluster (`ray_engine`)
and the file screening and row writing they share (`ray_io`). Needs the `ray` extra."""
