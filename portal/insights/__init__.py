"""Search insights for admins: what people search for, what finds nothing, what nobody opens."""
