"""The benchmark registry: what each benchmark is (catalog, class taxonomy, benchmark families)."""
