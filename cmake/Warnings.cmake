# Strict warnings for every target: the build fails on any warning.
add_compile_options(-Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
                    -Wformat=2 -Wno-unused-parameter)
