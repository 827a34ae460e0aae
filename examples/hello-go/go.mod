module example.com/skybridge/hello

go 1.24
