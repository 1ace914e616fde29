"""The benchmark registry: what each benchmark is (catalog, versions, class taxonomy, benchmark families)."""
